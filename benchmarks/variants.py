"""What the benchmarks that train models share: named variants run over seeds, and their summaries.

A variant is ``(config, overrides)``: ``configs/<config>_ml100k.yaml`` (or a ``.yaml`` path) with
``--set`` overrides. Each (variant, seed) trains in its own process through the ``hymirec train``
CLI (``run_one``), so a run's peak memory is its own and nothing is shared between runs;
``run_variants`` trains several at once with the options ``add_variant_arguments`` adds.

Results over seeds are summarised as mean and population std (``mean_std``), in one of the two
shapes the result files keep: ``[mean, std]`` lists (``baseline_summary``: baselines_ml100k,
llm_baselines_ml100k) or ``{"mean", "std"}`` dicts (``table_summary``: table2_ml100k,
table4_ablations, figure3_sweeps, hymirec_reduction). ``metric_names`` and ``metric_header`` give
the metrics of a list of ks and the ``| R@10 | ... | N@10 |`` header of their tables, ``plus_minus``
and ``change`` their cells.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from common import ROOT, machine

from hymirec.training.trainer import LAST, read_history

# Every k the configs evaluate (eval.ks), and the ones the baselines' tables show.
EVAL_KS = (10, 50, 100, 200)
KS = (10, 50, 200)
SPLITS = {"test_masked": "history masked (our protocol)", "test_unmasked": "history unmasked (RecBole's convention)"}
COSTS = ["epochs", "positions_per_s", "wall_seconds", "peak_rss_mb"]
# The single-interest next-item loss (the paper's "w/o DMIL" ablation).
NEXT_ITEM = "train.loss={name: full_softmax, temperature: 0.05, learnable_temperature: true}"


def metric_names(ks: Iterable[int]) -> list[str]:
    """``recall@k`` for every k of ``ks``, then ``ndcg@k``: the order of every table's columns."""
    ks = list(ks)
    return [f"recall@{k}" for k in ks] + [f"ndcg@{k}" for k in ks]


METRICS = metric_names(KS)


def short(metric: str) -> str:
    """A metric's column name: ``recall@10`` -> ``R@10``, ``ndcg@10`` -> ``N@10``."""
    return metric.replace("recall", "R").replace("ndcg", "N")


def table_header(columns: Iterable[str]) -> list[str]:
    """The header line and the rule line of a Markdown table with ``columns``."""
    columns = list(columns)
    return ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]


def metric_header(ks: Iterable[int], first: Iterable[str], last: Iterable[str] = ()) -> list[str]:
    """``table_header`` of the ``first`` columns, ``R@k`` and then ``N@k`` for each k of ``ks``, and
    the ``last`` columns."""
    return table_header([*first, *map(short, metric_names(ks)), *last])


def mean_std(values: Iterable[float], named: bool = False) -> list[float] | dict[str, float]:
    """Mean and (population) std of ``values`` over seeds: ``[mean, std]``, or with ``named``
    ``{"mean": ..., "std": ...}``."""
    values = list(values)
    mean, std = float(np.mean(values)), float(np.std(values))
    return {"mean": mean, "std": std} if named else [mean, std]


def plus_minus(value: list[float] | dict[str, float] | None, digits: int = 4, several: bool = True) -> str:
    """A ``mean_std`` value as ``mean ± std`` with ``digits`` decimals; the mean alone unless
    ``several`` seeds (one seed has no spread); ``n/a`` for None."""
    if value is None:
        return "n/a"
    mean, std = (value["mean"], value["std"]) if isinstance(value, dict) else value
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if several else f"{mean:.{digits}f}"


def change(mine: dict[str, float], ref: dict[str, float], several: bool = True) -> str:
    """What a table cell adds below ``mine``: its change against ``ref`` (both ``{"mean", "std"}``),
    marked ``(noise)`` where smaller than the larger of the two seed spreads (measured only with
    ``several`` seeds on both sides)."""
    delta = mine["mean"] - ref["mean"]
    noisy = several and abs(delta) < max(mine["std"], ref["std"])
    return f"<br>{delta:+.4f}{' (noise)' if noisy else ''}"


def split_summary(runs: list[dict], split: str, metrics: list[str], named: bool = False) -> dict:
    """``mean_std`` over ``runs`` of each of ``metrics`` on ``split`` (e.g. ``test_masked``)."""
    return {m: mean_std([r[split][m] for r in runs], named) for m in metrics}


def baseline_summary(runs: list[dict]) -> dict:
    """A row of ``baselines_ml100k.json`` or ``llm_baselines_ml100k.json``: ``[mean, std]`` of the
    validation value each run was selected on, of ``METRICS`` on both test splits, and of costs."""
    # The validation metric each run was selected on, so the table shows what selection saw.
    selected = [r["valid"][r.get("selection_metric", "ndcg@10")] for r in runs]
    out = {"valid_selected": mean_std(selected), "selection_metric": runs[0].get("selection_metric", "ndcg@10")}
    out.update({split: split_summary(runs, split, METRICS) for split in SPLITS})
    out["cost"] = {c: mean_std([r.get(c, 0.0) for r in runs]) for c in COSTS}
    return out


def table_summary(runs: list[dict]) -> dict:
    """A variant of ``table2_ml100k.json`` (and of the tables built like it): ``{"mean", "std"}`` of
    every metric of ``EVAL_KS`` on both test splits, of the validation NDCG@10 selected on, and of
    costs, and the number of seeds."""
    out = {split: split_summary(runs, split, metric_names(EVAL_KS), named=True) for split in SPLITS}
    out["valid_ndcg@10"] = mean_std([r["valid"]["ndcg@10"] for r in runs], named=True)
    # A run tabulated with --reuse from a folder written before wall times were kept has none.
    out["cost"] = {c: mean_std([r[c] for r in runs], named=True) if all(c in r for r in runs) else None
                   for c in COSTS}
    out["seeds"] = len(runs)
    reported = [r for r in runs if "test_by_history_length" in r]
    if reported:  # runs evaluated before eval.history_buckets existed have none
        out["test_by_history_length"] = history_length_summary(reported)
    return out


def history_length_summary(runs: list[dict]) -> dict:
    """``{"seeds": [...], "groups": {group: {"users": n, "recall@10"/"ndcg@10": {"mean", "std"}}}}``
    over ``runs``' test metrics by history length (every run of one split has the same groups),
    shortest histories first."""
    groups: dict[str, list[dict]] = {}
    for run in runs:
        for group in run["test_by_history_length"]:
            groups.setdefault(group["history"], []).append(group)
    return {"seeds": [r.get("seed") for r in runs],
            "groups": {label: {"users": found[0]["users"],
                               **{m: mean_std([g[m] for g in found], named=True) for m in ("recall@10", "ndcg@10")}}
                       for label, found in groups.items()}}


def baseline_markdown(summary: dict[str, dict], seeds: list[int]) -> str:
    """The tables of ``baseline_summary`` rows: test metrics under both masking conventions, then the
    validation value selected on and the cost per run."""
    lines = []
    for split, title in SPLITS.items():
        lines += [f"### Test, {title}: mean ± std over seeds {seeds}", "", *metric_header(KS, ["model"])]
        for model, s in summary.items():
            lines.append(f"| {model} | " + " | ".join(plus_minus(s[split][m]) for m in METRICS) + " |")
        lines.append("")
    lines += ["### Validation metric selected on, and cost per run (mean ± std)", "",
              "| model | selected on | valid value | epochs | training positions/s | wall time (s) | peak RSS (MiB) |",
              "|---|---|---|---|---|---|---|"]
    for model, s in summary.items():
        c = s["cost"]
        v = s.get("valid_selected", [float("nan"), float("nan")])
        lines.append(f"| {model} | {s.get('selection_metric', 'ndcg@10')} | {plus_minus(v)} "
                     f"| {plus_minus(c['epochs'], 1)} | {plus_minus(c['positions_per_s'], 0)} "
                     f"| {plus_minus(c['wall_seconds'], 0)} | {plus_minus(c['peak_rss_mb'], 0)} |")
    return "\n".join(lines) + "\n"


def config_path(model: str) -> Path:
    """``configs/<model>_ml100k.yaml``, or ``model`` itself when it names a ``.yaml`` file."""
    return Path(model) if model.endswith(".yaml") else ROOT / "configs" / f"{model}_ml100k.yaml"


def run_one(model: str, seed: int, overrides: list[str], out_dir: Path, name: str | None = None,
            reuse: bool = False) -> dict:
    """Train ``config_path(model)`` with ``seed`` and ``overrides`` in its own process
    (or, with ``reuse``, read the results of a finished run of that name, and continue one killed
    midway from its last checkpoint; the trainer refuses a checkpoint of other settings). A continued
    run's ``wall_seconds`` is its last process plus the training seconds of the epochs before it
    (their evaluations, seconds each, are not counted); its ``train_seconds`` counts every epoch."""
    name = name or f"{model}_seed{seed}"
    if reuse and (out_dir / name / "results.json").is_file():
        return json.loads((out_dir / name / "results.json").read_text())
    mode = "--resume" if reuse and (out_dir / name / LAST).is_file() else "--overwrite"
    cmd = [
        sys.executable, "-m", "hymirec", "train", "--config", str(config_path(model)),
        "--out", str(out_dir), mode, "--set", f"name={name}", "--set", f"train.seed={seed}",
        "--set", "train.progress=false",
    ]
    for item in overrides:
        cmd += ["--set", item]
    # A checkpoint is written after its epoch's metrics line, so a resumable run has both.
    earlier = sum(r["train_seconds"] for r in read_history(out_dir / name)) if mode == "--resume" else 0.0
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    results = json.loads((out_dir / name / "results.json").read_text())
    results["wall_seconds"] = earlier + time.perf_counter() - start
    # Kept with the run, so a later --reuse tabulates its cost too.
    (out_dir / name / "results.json").write_text(json.dumps(results, indent=2))
    return results


def train_all(train: Callable[[str, int], dict], names: list[str], seeds: list[int],
              slots: int) -> dict[str, list[dict]]:
    """``train(name, seed)`` for every name and seed, ``slots`` at once; each name's results in seed order."""
    jobs = [(name, seed) for name in names for seed in seeds]
    with ThreadPoolExecutor(max_workers=slots) as pool:
        finished = list(pool.map(lambda job: train(*job), jobs))
    return {name: [r for (n, _), r in zip(jobs, finished) if n == name] for name in names}


def add_variant_arguments(parser: argparse.ArgumentParser, out: Path) -> None:
    """The options of every script that trains named variants with ``run_variants`` (runs go under ``out``)."""
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--set", action="append", default=[], help="override applied to every run trained now")
    parser.add_argument("--slots", type=int, default=2, help="runs trained at once (each in its own process)")
    parser.add_argument("--threads", type=int, default=1, help="train.threads of each run")
    parser.add_argument("--out", default=str(out), help="run folders")
    parser.add_argument("--reuse", action="store_true",
                        help="read the results of runs already finished under --out instead of training them again, "
                             "and continue runs killed midway from their last checkpoint (to finish an interrupted "
                             "benchmark, or to tabulate runs made on another machine)")


def trained_on(runs: list[dict]) -> str:
    """Where ``runs`` were trained: the GPU their results name (a run on CUDA records it), else
    this machine -- so that runs made on a lent GPU and tabulated here (``--reuse``) say so."""
    gpus = sorted({r["gpu"] for r in runs if "gpu" in r})
    return f"{', '.join(gpus)} (train.device=cuda)" if gpus else machine()


def run_name(variant: str, seed: int) -> str:
    """The run folder of one (variant, seed): letters, digits and ``_=+.-`` only."""
    return re.sub(r"[^A-Za-z0-9_=+.-]", "_", f"{variant}_seed{seed}")


def run_variants(variants: dict[str, tuple[str, list[str]]], args: argparse.Namespace,
                 stored: dict[tuple[str, int], dict] | None = None) -> dict[str, list[dict]]:
    """Train every (variant, seed) of ``args.variants`` -- a variant is ``(config, its overrides)`` --
    with the options of ``add_variant_arguments``, ``args.slots`` runs at once, each in its own
    process; returns each variant's results in seed order, each carrying its ``seed``. With
    ``--reuse``, a run whose folder is gone is read from ``stored`` ((variant, seed) -> results, what
    a results file kept) before it is trained again."""
    overrides = [f"train.threads={args.threads}", *args.set]

    def train(name: str, seed: int) -> dict:
        config, own = variants[name]
        folder = Path(args.out) / run_name(name, seed)
        if args.reuse and not (folder / "results.json").is_file() and (name, seed) in (stored or {}):
            return stored[(name, seed)]
        results = run_one(config, seed, overrides + own, Path(args.out), name=folder.name, reuse=args.reuse)
        return {**results, "seed": seed}

    return train_all(train, args.variants, args.seeds, args.slots)
