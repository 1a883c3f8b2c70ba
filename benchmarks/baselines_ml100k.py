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
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from common import RESULTS, machine
from common import command as command_line

ROOT = Path(__file__).resolve().parent.parent
METRICS = ["recall@10", "recall@50", "recall@200", "ndcg@10", "ndcg@50", "ndcg@200"]
COSTS = ["epochs", "positions_per_s", "wall_seconds", "peak_rss_mb"]


def config_path(model: str) -> Path:
    """``configs/<model>_ml100k.yaml``, or ``model`` itself when it names a ``.yaml`` file."""
    return Path(model) if model.endswith(".yaml") else ROOT / "configs" / f"{model}_ml100k.yaml"


def run_one(model: str, seed: int, overrides: list[str], out_dir: Path, name: str | None = None,
            reuse: bool = False) -> dict:
    """Train ``config_path(model)`` with ``seed`` and ``overrides`` in its own process
    (or, with ``reuse``, read the results of a finished run of that name)."""
    name = name or f"{model}_seed{seed}"
    if reuse and (out_dir / name / "results.json").is_file():
        return json.loads((out_dir / name / "results.json").read_text())
    cmd = [
        sys.executable, "-m", "hymirec", "train", "--config", str(config_path(model)),
        "--out", str(out_dir), "--overwrite", "--set", f"name={name}", "--set", f"train.seed={seed}",
        "--set", "train.progress=false",
    ]
    for item in overrides:
        cmd += ["--set", item]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    results = json.loads((out_dir / name / "results.json").read_text())
    results["wall_seconds"] = time.perf_counter() - start
    # Kept with the run, so a later --reuse tabulates its cost too.
    (out_dir / name / "results.json").write_text(json.dumps(results, indent=2))
    return results


def add_variant_arguments(parser: argparse.ArgumentParser, out: Path) -> None:
    """The options of every script that trains named variants with ``run_variants`` (runs go under ``out``)."""
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--set", action="append", default=[], help="override applied to every run trained now")
    parser.add_argument("--slots", type=int, default=2, help="runs trained at once (each in its own process)")
    parser.add_argument("--threads", type=int, default=1, help="train.threads of each run")
    parser.add_argument("--out", default=str(out), help="run folders")
    parser.add_argument("--reuse", action="store_true",
                        help="read the results of runs already finished under --out instead of training them again "
                             "(to finish an interrupted benchmark, or to tabulate runs made on another machine)")


def run_name(variant: str, seed: int) -> str:
    """The run folder of one (variant, seed): letters, digits and ``_=+.-`` only."""
    return re.sub(r"[^A-Za-z0-9_=+.-]", "_", f"{variant}_seed{seed}")


def run_variants(variants: dict[str, tuple[str, list[str]]], args: argparse.Namespace) -> dict[str, list[dict]]:
    """Train every (variant, seed) of ``args.variants`` -- a variant is ``(config, its overrides)`` --
    with the options of ``add_variant_arguments``, ``args.slots`` runs at once, each in its own
    process; returns each variant's results in seed order."""
    overrides = [f"train.threads={args.threads}", *args.set]
    jobs = [(name, seed) for name in args.variants for seed in args.seeds]

    def train(job: tuple[str, int]) -> dict:
        name, seed = job
        config, own = variants[name]
        return run_one(config, seed, overrides + own, Path(args.out), name=run_name(name, seed), reuse=args.reuse)

    with ThreadPoolExecutor(max_workers=args.slots) as pool:
        finished = list(pool.map(train, jobs))
    return {name: [r for (n, _), r in zip(jobs, finished) if n == name] for name in args.variants}


def summarise(runs: list[dict]) -> dict:
    # The validation metric each run was selected on, so the table shows what selection saw.
    selected = [r["valid"][r.get("selection_metric", "ndcg@10")] for r in runs]
    out = {"valid_selected": [float(np.mean(selected)), float(np.std(selected))],
           "selection_metric": runs[0].get("selection_metric", "ndcg@10")}
    for split in ("test_masked", "test_unmasked"):
        out[split] = {m: [float(np.mean([r[split][m] for r in runs])), float(np.std([r[split][m] for r in runs]))]
                      for m in METRICS}
    out["cost"] = {c: [float(np.mean([r.get(c, 0.0) for r in runs])), float(np.std([r.get(c, 0.0) for r in runs]))]
                   for c in COSTS}
    return out


def markdown(summary: dict, seeds: list[int]) -> str:
    lines = []
    for split, title in (("test_masked", "history masked (our protocol)"), ("test_unmasked", "history unmasked (RecBole's convention)")):
        lines += [f"### Test, {title}: mean ± std over seeds {seeds}", ""]
        lines.append("| model | " + " | ".join(m.replace("recall", "R").replace("ndcg", "N") for m in METRICS) + " |")
        lines.append("|---" * (len(METRICS) + 1) + "|")
        for model, s in summary.items():
            cells = [f"{s[split][m][0]:.4f} ± {s[split][m][1]:.4f}" for m in METRICS]
            lines.append(f"| {model} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["### Validation metric selected on, and cost per run (mean ± std)", "",
              "| model | selected on | valid value | epochs | training positions/s | wall time (s) | peak RSS (MiB) |",
              "|---|---|---|---|---|---|---|"]
    for model, s in summary.items():
        c = s["cost"]
        v = s.get("valid_selected", [float("nan"), float("nan")])
        lines.append(f"| {model} | {s.get('selection_metric', 'ndcg@10')} | {v[0]:.4f} ± {v[1]:.4f} "
                     f"| {c['epochs'][0]:.1f} ± {c['epochs'][1]:.1f} | {c['positions_per_s'][0]:.0f} ± {c['positions_per_s'][1]:.0f} "
                     f"| {c['wall_seconds'][0]:.0f} ± {c['wall_seconds'][1]:.0f} | {c['peak_rss_mb'][0]:.0f} ± {c['peak_rss_mb'][1]:.0f} |")
    return "\n".join(lines) + "\n"


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
    args = parser.parse_args()

    out_dir = Path(args.out)
    results_json = RESULTS / "baselines_ml100k.json"
    # Models run now replace their rows; rows of models not run now are kept, each with the
    # command and machine load of its own run, so one model can be re-run without the others.
    previous = json.loads(results_json.read_text()) if results_json.exists() and not args.fresh else {}
    summary, all_runs, meta = previous.get("summary", {}), previous.get("runs", {}), previous.get("meta", {})
    command = command_line()
    def overrides(model: str) -> list[str]:
        if model == "mostpop":  # it has no training or model settings
            return [o for o in args.set if not o.startswith(("train.", "model."))]
        return ([f"train.threads={args.threads}"] if args.threads else []) + args.set

    def row(model: str) -> str:
        return f"{model} {args.label}" if args.label else model

    jobs = [(model, seed) for model in args.models for seed in args.seeds]
    with ThreadPoolExecutor(max_workers=args.slots) as pool:
        finished = list(pool.map(
            lambda job: run_one(job[0], job[1], overrides(job[0]), out_dir,
                                name=f"{row(job[0])}_seed{job[1]}".replace(" ", "_")), jobs))
    for model in args.models:
        all_runs[row(model)] = [r for (m, _), r in zip(jobs, finished) if m == model]
        summary[row(model)] = summarise(all_runs[row(model)])
        meta[row(model)] = {"command": command, "seeds": args.seeds, "slots": args.slots, "threads": args.threads,
                       "load_average_after": os.getloadavg()}
    meta["machine"] = machine()
    RESULTS.mkdir(parents=True, exist_ok=True)
    results_json.write_text(json.dumps({"meta": meta, "summary": summary, "runs": all_runs}, indent=2))
    commands = "\n".join(f"- {m}: `{meta[m]['command']}`" for m in summary)
    md = (f"## Baselines on MovieLens-100K (leave-one-out, full ranking)\n\nMachine: {meta['machine']}. "
          f"Each model's runs came from:\n\n{commands}\n\n" + markdown(summary, args.seeds))
    (RESULTS / "baselines_ml100k.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
