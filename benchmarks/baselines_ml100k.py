"""Benchmark: the baselines on MovieLens-100K, 3 seeds each, one shared protocol.

Each (model, seed) trains in its own process through the ``hymirec train`` CLI, so the reported
peak memory is that run's own and nothing is shared between runs. Results are aggregated as
mean ± std over seeds, for the test targets with the history masked (our protocol) and unmasked
(RecBole's convention), and written to ``benchmarks/results/baselines_ml100k.{json,md}``.

Run alone on a quiet machine (timings are skewed by anything running beside it):

    .venv/bin/python benchmarks/baselines_ml100k.py [--models sasrec hstu] [--seeds 1 2 3] [--set train.epochs=50]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from common import RESULTS, ROOT, machine
from common import command as command_line
from variants import baseline_markdown, baseline_summary, run_one, train_all


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["mostpop", "gru4rec", "sasrec", "hstu"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--set", action="append", default=[], help="override applied to every run")
    parser.add_argument("--out", default=str(ROOT / "runs" / "benchmarks"), help="run folders")
    parser.add_argument("--fresh", action="store_true", help="drop rows of models not run now")
    parser.add_argument("--slots", type=int, default=1, help="runs trained at once (each in its own process)")
    parser.add_argument("--label", default="",
                        help="rows are named '<model> <label>' (a variant beside the config's own rows)")
    parser.add_argument("--threads", type=int, default=0,
                        help="train.threads of each run (0: one per core; use 1 with --slots 2 on 2 cores)")
    parser.add_argument("--reuse", action="store_true",
                        help="read runs already finished under --out instead of training them again")
    args = parser.parse_args()

    out_dir = Path(args.out)
    results_json = RESULTS / "baselines_ml100k.json"
    # Models run now replace their rows' seeds run now; rows of models not run now, and the other
    # seeds of a row, are kept, each row with the command and machine load of its last run, so one
    # model or one seed can be run again without the others.
    previous = json.loads(results_json.read_text()) if results_json.exists() and not args.fresh else {}
    summary, all_runs, meta = previous.get("summary", {}), previous.get("runs", {}), previous.get("meta", {})
    command = command_line()

    def overrides(model: str) -> list[str]:
        if model == "mostpop":  # it has no training or model settings
            return [o for o in args.set if not o.startswith(("train.", "model."))]
        return ([f"train.threads={args.threads}"] if args.threads else []) + args.set

    def row(model: str) -> str:
        return f"{model} {args.label}" if args.label else model

    def train(model: str, seed: int) -> dict:
        name = f"{row(model)}_seed{seed}".replace(" ", "_")
        return {**run_one(model, seed, overrides(model), out_dir, name=name, reuse=args.reuse), "seed": seed}

    trained = train_all(train, args.models, args.seeds, args.slots)
    for model in args.models:
        # Runs stored before they carried their seed take it from their row's seed list.
        stored = zip(all_runs.get(row(model), []), meta.get(row(model), {}).get("seeds", []))
        kept = [{"seed": seed, **r} for r, seed in stored if seed not in args.seeds]
        all_runs[row(model)] = sorted(kept + trained[model], key=lambda r: r["seed"])
        summary[row(model)] = baseline_summary(all_runs[row(model)])
        meta[row(model)] = {"command": command, "seeds": [r["seed"] for r in all_runs[row(model)]], "slots": args.slots,
                            "threads": args.threads, "load_average_after": os.getloadavg()}
    meta["machine"] = machine()
    RESULTS.mkdir(parents=True, exist_ok=True)
    results_json.write_text(json.dumps({"meta": meta, "summary": summary, "runs": all_runs}, indent=2))
    commands = "\n".join(f"- {m} (seeds {meta[m]['seeds']}): `{meta[m]['command']}`" for m in summary)
    md = (f"## Baselines on MovieLens-100K (leave-one-out, full ranking)\n\nMachine: {meta['machine']}. "
          f"Each model's runs came from (the last call for its row):\n\n{commands}\n\n"
          + baseline_markdown(summary, sorted({s for m in summary for s in meta[m]["seeds"]})))
    (RESULTS / "baselines_ml100k.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
