"""Benchmark: the paper's Table 4 on MovieLens-100K -- HyMiRec beside each of its seven ablations.

Each variant is ``configs/hymirec_ml100k.yaml`` with one setting changed (docs/hymirec.md lists
the switches), 3 seeds, every run in its own process through ``hymirec train``. For each metric
the table gives the mean ± std over seeds and the change against the full model, marked
"(noise)" when it is smaller than the larger of the two seed spreads. Results:
``benchmarks/results/table4_ablations.{json,md,png}``. Variants already measured are kept when the
script is run again for others (``--variants``); ``--variants`` alone rebuilds the files.

    .venv/bin/python benchmarks/table4_ablations.py --slots 2 --threads 1 [--variants full "w/o indicator"]
"""

from __future__ import annotations

import argparse
import json

from common import RESULTS, ROOT, command, machine, new_figure, save_figure, write_results
from variants import (KS, METRICS, NEXT_ITEM, SPLITS, add_variant_arguments, change, metric_header, plus_minus,
                      run_variants, table_summary)

VARIANTS = {
    "full": ("hymirec", []),
    "w/o lightweight recommender": ("hymirec", ["model.lightweight.enabled=false"]),
    "w/o codebook (raw vectors)": ("hymirec", ["model.history.codebook=none"]),
    "Euclidean codebook": ("hymirec", ["model.history.codebook=euclidean"]),
    "w/o indicator": ("hymirec", ["model.llm.indicator=false"]),
    "w/o DMIL (one interest, next item)": ("hymirec", ["model.llm.interests=1", NEXT_ITEM]),
    "w/o window targets (w = 1)": ("hymirec", ["train.loss.window=1"]),
    "max matching": ("hymirec", ["train.loss.matching=max"]),
}


def markdown(variants: dict[str, dict], meta: dict) -> str:
    full = variants["full"]
    lines = ["## Table 4 on MovieLens-100K: HyMiRec and its ablations\n",
             f"Machine: {meta['machine']}. Command: `{meta['command']}`. Mean ± std over 3 seeds; below each "
             "ablation, its change against the full model, '(noise)' where smaller than the seed spread.\n"]
    for split, title in SPLITS.items():
        lines += [f"### Test, {title}", "", *metric_header(KS, ["variant"])]
        for name, s in variants.items():
            cells = [plus_minus(s[split][m]) + (change(s[split][m], full[split][m]) if name != "full" else "")
                     for m in METRICS]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def plot(variants: dict[str, dict], path) -> None:
    """Each ablation's change against the full model (test, history masked), with error bars of
    the larger of the two seed spreads: a bar inside its error bar is noise."""
    full = variants["full"]["test_masked"]
    names = [n for n in variants if n != "full"]
    fig, axes = new_figure(1, 2, figsize=(12, 4.5), sharey=True)
    for ax, metric in zip(axes, ["recall@10", "ndcg@10"]):
        mine = [variants[n]["test_masked"][metric] for n in names]
        deltas = [m["mean"] - full[metric]["mean"] for m in mine]
        spreads = [max(m["std"], full[metric]["std"]) for m in mine]
        ax.barh(range(len(names)), deltas, xerr=spreads, capsize=4, color=["C2" if d > 0 else "C3" for d in deltas])
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(range(len(names)), names)
        ax.set_xlabel(f"{metric} minus the full model's ({full[metric]['mean']:.4f})")
        ax.grid(axis="x", alpha=0.3)
    axes[0].invert_yaxis()
    save_figure(fig, path, "Table 4 on MovieLens-100K: each ablation against the full HyMiRec (3 seeds; bars: larger seed std)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS),
                        help="variants trained now (none: rebuild the tables and plot from the saved results)")
    add_variant_arguments(parser, ROOT / "runs" / "benchmarks" / "table4")
    args = parser.parse_args()

    path = RESULTS / "table4_ablations.json"
    previous = json.loads(path.read_text()) if path.exists() else {}
    variants, runs = previous.get("variants", {}), previous.get("runs", {})
    runs.update(run_variants(VARIANTS, args))
    for name in args.variants:
        variants[name] = {**table_summary(runs[name]), "command": command()}
    if "full" not in variants:
        raise SystemExit("the full model has not been measured yet: run with --variants full first")
    ordered = {name: variants[name] for name in VARIANTS if name in variants}
    meta = {"machine": machine(), "command": command(), "seeds": args.seeds}
    if not args.variants and "meta" in previous:  # only the tables were rebuilt: keep how runs were made
        meta = previous["meta"]
    plot(ordered, RESULTS / "table4_ablations.png")
    write_results("table4_ablations", {"meta": meta, "variants": ordered, "runs": runs}, markdown(ordered, meta))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
