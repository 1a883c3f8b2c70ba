"""Validation search for the models' settings on MovieLens-100K (never the test split).

Each variant is the model's config file (``configs/<model>_ml100k.yaml``) plus ``--set``
overrides, trained once (seed 42) in its own process through ``hymirec train``; the best epoch is
chosen on validation NDCG@10 and only validation metrics are read. Variants run ``--slots`` at a
time, each with ``train.threads=1`` by default (two one-thread jobs on the 2 cores cost each ~1.15x its solo
one-thread time, so the search runs nearly twice as fast as one job after another).

The search is a coordinate search done in stages, each stage varying one or two settings around
the best so far; the stages actually run, in order, are the file's record (``--stage`` names
them). ``--dataset movielens-small`` searches on MovieLens-latest-small instead (the same configs
with ``data.dataset`` overridden; its records carry the dataset). Results accumulate in
``benchmarks/results/search_ml100k.{json,md}``:

    .venv/bin/python benchmarks/search_ml100k.py --model sasrec --stage loss \\
        --variant "full cosine T0.05=" \\
        --variant "full dot T1=train.loss.similarity=dot train.loss.temperature=1"
"""

from __future__ import annotations

import argparse
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import ML100K, RESULTS, ROOT
from variants import run_one

from hymirec.training.trainer import read_history

SEARCH_JSON = RESULTS / "search_ml100k.json"
SEED = 42


def parse_variant(text: str) -> tuple[str, list[str]]:
    """``"label=key=value key=value"`` -> (label, overrides); the label may not contain ``=``."""
    label, _, rest = text.partition("=")
    return label.strip(), rest.split()


def markdown(records: list[dict]) -> str:
    lines = ["## Validation search", "",
             "Seed 42, one run per variant, best epoch by validation NDCG@10; test metrics are not read.",
             "Overrides are relative to `configs/<model>_ml100k.yaml` as it was when the stage ran.", ""]
    for dataset, model in dict.fromkeys((r.get("dataset", ML100K), r["model"]) for r in records):
        lines += [f"### {model} on {dataset}", "",
                  "| stage | variant | overrides | valid N@10 | valid R@10 | best epoch / epochs | s/epoch |",
                  "|---|---|---|---|---|---|---|"]
        for r in (r for r in records if (r.get("dataset", ML100K), r["model"]) == (dataset, model)):
            lines.append(
                f"| {r['stage']} | {r['variant']}{' (' + r['note'] + ')' if r.get('note') else ''} | `{' '.join(r['overrides']) or '(config)'}` | {r['valid_ndcg10']:.4f} "
                f"| {r['valid_recall10']:.4f} | {r['best_epoch']} / {r['epochs']} | {r['seconds_per_epoch']:.1f} |")
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--dataset", default=ML100K, choices=[ML100K, "movielens-small"])
    parser.add_argument("--stage", required=True, help="name of this stage of the search")
    parser.add_argument("--variant", action="append", required=True, help='"label=key=value key=value ..."')
    parser.add_argument("--set", action="append", default=[], help="override applied to every variant")
    parser.add_argument("--slots", type=int, default=2, help="variants trained at once (one thread each)")
    parser.add_argument("--threads", type=int, default=1, help="train.threads of each variant")
    parser.add_argument("--out", default=str(ROOT / "runs" / "search"))
    parser.add_argument("--stopped", metavar="NOTE",
                        help="record the variants' runs, stopped by hand, from their folders (with NOTE) "
                             "instead of training them")
    args = parser.parse_args()

    variants = [parse_variant(v) for v in args.variant]
    common = ["train.progress=false", f"train.threads={args.threads}", f"data.dataset={args.dataset}", *args.set]

    def train(variant: tuple[str, list[str]]) -> dict:
        label, overrides = variant
        prefix = "" if args.dataset == ML100K else f"{args.dataset}_"
        name = f"{prefix}{args.model}_{args.stage}_{label}".replace(" ", "_").replace("/", "-")
        folder = Path(args.out) / name
        if args.stopped is None:
            results = run_one(args.model, SEED, common + overrides, Path(args.out), name=name)
        history = read_history(folder)
        if args.stopped is not None:  # what the trainer would have reported at that epoch
            best_epoch = max(history, key=lambda h: h["valid"]["ndcg@10"])["epoch"]
            wall = sum(h["train_seconds"] for h in history)
            results = {"best_epoch": best_epoch, "epochs": len(history), "wall_seconds": wall}
        best = history[results["best_epoch"] - 1]["valid"]
        record = {
            "dataset": args.dataset, "model": args.model, "stage": args.stage, "variant": label, "overrides": args.set + overrides,
            "valid_ndcg10": best["ndcg@10"], "valid_recall10": best["recall@10"],
            "best_epoch": results["best_epoch"], "epochs": results["epochs"],
            "seconds_per_epoch": results["wall_seconds"] / max(results["epochs"], 1),
            **({"note": f"stopped by hand after epoch {len(history)}: {args.stopped}"} if args.stopped else {}),
        }
        print(json.dumps(record), flush=True)
        with lock:  # saved as soon as it is known, so a stopped search keeps what it finished
            save(record)
        return record

    lock = threading.Lock()
    with ThreadPoolExecutor(max_workers=args.slots) as pool:
        records = list(pool.map(train, variants))
    print(markdown(records))
    return 0


def save(record: dict) -> None:
    """Add ``record`` to the results file (replacing an earlier run of the same variant)."""
    def key(r: dict) -> tuple:
        return r.get("dataset", ML100K), r["model"], r["stage"], r["variant"]

    previous = json.loads(SEARCH_JSON.read_text()) if SEARCH_JSON.exists() else []
    records = [r for r in previous if key(r) != key(record)] + [record]
    RESULTS.mkdir(parents=True, exist_ok=True)
    SEARCH_JSON.write_text(json.dumps(records, indent=2))
    (RESULTS / "search_ml100k.md").write_text(markdown(records))


if __name__ == "__main__":
    raise SystemExit(main())
