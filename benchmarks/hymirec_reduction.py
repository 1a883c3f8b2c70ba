"""Benchmark: HyMiRec reduced to HLLM, then grown back one part at a time (MovieLens-100K).

When a model misses its target, suspect the code before the method: reduce it to a known model
and check that it matches, then add its parts back and measure what each costs or earns. Every
arm is ``configs/hymirec_ml100k.yaml`` (text + ID item vectors) with the overrides below, trains
every training position once per epoch unless it says otherwise (so an epoch is the same ~97k
next-item pairs for every arm, as for HLLM), and is selected on validation N@10:

- **A (HyMiRec as HLLM)**: 32 recent items, no lightweight recommender, no indicator, one
  interest read at the item token (``llm.readout: item``), 4 layers, the next-item loss -- HLLM's
  pairs and readout in HyMiRec's code path. A ≈ HLLM says the shared path is right.
- **Aq (A read at a query token)**: A with one learnable query token after each item (plus that
  item's vector, ``query_offset``), the interest read there instead of at the item token -- the
  readout HyMiRec's interests use. Aq − A is what the query readout alone gives.
- **B (A with the earlier sampling)**: rows of 512, windows of n = 20 with drawn ends
  (``windows: sample``), 5 windows per row and epoch so that an epoch holds about as many pairs
  as A's. B − A is the cost of that sampling.
- **A512 (A with rows of 512)**: the same model and windows of 32, but cut from rows of up to 512
  items (``windows: tile``), so window boundaries move from epoch to epoch (a random phase per
  row) instead of being the fixed 32-item tiles of A's rows. A512 − A is what moving boundaries
  alone give; it is the reference for C1.
- **C1 (A512 + the long history)**: rows of 512, the lightweight recommender over the compressed
  history before each window (its coarse interests and the indicator before the recent items),
  still one interest at the item token. C1 − A512 is what the long-history branch adds.
- **C2 (full HyMiRec, A's coverage)**: C1 with two interests read at query tokens (started
  orthogonal) and trained by DMIL (w = 4). C2 − C1 is what the multi-interest head adds.
- **S (C1 trained as searched)**: C1 with the training the validation search chose (weight decay
  0.1, a fixed temperature of 0.1, 24 epochs with patience 4; ``table2_ml100k.SEARCHED``): the
  Table 2 variant "hymirec text+ID tiled" (its runs are the same runs).
- **S- (S without the long history)**: S with the lightweight recommender and the indicator off,
  i.e. A512 with S's training. S − S- is what the long-history branch adds at the final training.

On MovieLens-100K the HLLM text + ID reference row is read from ``table2_ml100k.json`` (the same
code and settings, 3 seeds). ``--dataset movielens-small`` runs the arms on MovieLens-latest-small
(histories 2.5x longer on average, 40 users with 512 or more), where the long-history branch has
the most to read. Results: ``benchmarks/results/hymirec_reduction[_<dataset>].{json,md,png}``.

    .venv/bin/python benchmarks/hymirec_reduction.py --slots 2 --threads 1 [--variants A B] [--seeds 1 2 3]
    .venv/bin/python benchmarks/hymirec_reduction.py --dataset movielens-small --variants "A512: A on rows of 512" \
        "C1: A + long history"
"""

from __future__ import annotations

import argparse
import json

from common import RESULTS, ROOT, command, machine, new_figure, save_figure, write_results
from table2_ml100k import VARIANTS as TABLE2
from variants import (KS, METRICS, NEXT_ITEM, SPLITS, add_variant_arguments, change, metric_header, plus_minus,
                      run_variants, table_summary)

SCHEDULE = ["train.epochs=12", "train.patience=3"]
A = ["model.items.item_ids=true", "data.max_len=32", "model.llm.recent=32", "model.lightweight.enabled=false",
     "model.llm.indicator=false", "model.llm.interests=1", "model.llm.readout=item",
     "model.llm.backbone.num_layers=4", "model.windows=tile", NEXT_ITEM, *SCHEDULE]
LONG = ["data.max_len=512", "model.lightweight.enabled=true", "model.llm.indicator=true"]
VARIANTS = {
    "A: HyMiRec as HLLM": ("hymirec", A),
    "Aq: A read at a query token": ("hymirec", [*A, "model.llm.readout=query"]),
    "B: A with the earlier sampling": ("hymirec", [*A, "data.max_len=512", "model.llm.recent=20",
                                                    "model.windows=sample", "model.train_windows=5"]),
    "A512: A on rows of 512": ("hymirec", [*A, "data.max_len=512"]),
    "C1: A + long history": ("hymirec", [*A, *LONG]),
    "C2: full HyMiRec, A's coverage": ("hymirec", [*A, *LONG, "model.llm.interests=2", "model.llm.readout=query",
                                                    "model.llm.query_init=orthogonal",
                                                    "train.loss={name: dmil, window: 4, temperature: 0.05, "
                                                    "learnable_temperature: true}"]),
    "S: C1 trained as searched": TABLE2["hymirec text+ID tiled"],
    "S-: S without the long history": TABLE2["hymirec text+ID tiled w/o long history"],
}
REFERENCE = "hllm text+ID"


def best_epoch(summary: dict) -> str:
    return f" ({summary['best_epoch']:.1f})" if "best_epoch" in summary else ""


def seconds_per_epoch(summary: dict) -> str:
    """Training seconds per epoch; a summary without them (the reference row) gives its wall
    seconds per epoch, evaluation included, marked so."""
    if "seconds_per_epoch" in summary:
        return f"{summary['seconds_per_epoch']:.0f}"
    return f"{summary['cost']['wall_seconds']['mean'] / summary['cost']['epochs']['mean']:.0f} (wall)"


def markdown(variants: dict[str, dict], reference: dict | None, meta: dict) -> str:
    lines = [f"## HyMiRec reduced to HLLM and grown back ({meta['dataset']})\n",
             f"Machine: {meta['machine']}. Command: `{meta['command']}`. Mean ± std over the seeds "
             "given per row; below each arm, its change against the first arm in the table, '(noise)' "
             "where smaller than the larger seed spread."
             + (" HLLM text + ID from `table2_ml100k.json` (3 seeds)." if reference else "") + "\n"]
    base = next(iter(variants.values()), None)
    rows = {"HLLM text+ID": reference, **variants} if reference else variants
    for split, title in SPLITS.items():
        lines += [f"### Test, {title}", "",
                  *metric_header(KS, ["arm", "seeds", "valid N@10"], ["epochs (best)", "train s / epoch"])]
        for name, s in rows.items():
            several = s["seeds"] > 1
            against = base is not None and s is not base and name != "HLLM text+ID"
            cells = [plus_minus(s[split][m], several=several)
                     + (change(s[split][m], base[split][m], several and base["seeds"] > 1) if against else "")
                     for m in METRICS]
            lines.append(f"| {name} | {s['seeds']} | {plus_minus(s['valid_ndcg@10'], several=several)} | "
                         + " | ".join(cells)
                         + f" | {s['cost']['epochs']['mean']:.1f}{best_epoch(s)} | {seconds_per_epoch(s)} |")
        lines.append("")
    return "\n".join(lines)


def plot(variants: dict[str, dict], reference: dict | None, meta: dict, path) -> None:
    """Validation and test (history masked) N@10 and R@10 of each arm, mean with seed-std bars;
    the HLLM reference as a line where there is one."""
    names = list(variants)
    fig, axes = new_figure(1, 3, figsize=(15, 4.5), sharey=True)
    panels = [("valid", "ndcg@10", "valid_ndcg@10"), ("test_masked", "ndcg@10", None), ("test_masked", "recall@10", None)]
    for ax, (split, metric, key) in zip(axes, panels):
        stats = [variants[n][key] if key else variants[n][split][metric] for n in names]
        ax.barh(range(len(names)), [st["mean"] for st in stats], xerr=[st["std"] for st in stats], capsize=4,
                color=[f"C{i}" for i in range(len(names))])
        if reference is not None:
            ref = reference[key] if key else reference[split][metric]
            ax.axvline(ref["mean"], color="black", ls="--", lw=1, label=f"HLLM text+ID {ref['mean']:.4f}")
            ax.legend(loc="lower right", fontsize=8)
        ax.set_xlim(left=0.8 * min(st["mean"] for st in stats))  # the differences, not the common part
        ax.set_yticks(range(len(names)), [f"{n} ({variants[n]['seeds']} seed{'s' * (variants[n]['seeds'] > 1)})"
                                          for n in names])
        ax.set_xlabel(f"{'validation' if key else 'test, history masked'} {metric}")
        ax.grid(axis="x", alpha=0.3)
    axes[0].invert_yaxis()
    save_figure(fig, path, f"HyMiRec reduced to HLLM and grown back ({meta['dataset']}; bars: seed std)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS),
                        help="arms trained now (none: rebuild the table from the saved results)")
    parser.add_argument("--dataset", default="movielens-100k", help="data.dataset of every arm")
    add_variant_arguments(parser, ROOT / "runs" / "benchmarks" / "reduction")
    args = parser.parse_args()
    stem = "hymirec_reduction" + ("" if args.dataset == "movielens-100k" else f"_{args.dataset}")
    if args.dataset != "movielens-100k":
        args.set.append(f"data.dataset={args.dataset}")
        args.out = str(ROOT / "runs" / "benchmarks" / stem) if args.out.endswith("reduction") else args.out

    path = RESULTS / f"{stem}.json"
    previous = json.loads(path.read_text()) if path.exists() else {}
    variants, runs = previous.get("variants", {}), previous.get("runs", {})
    runs.update(run_variants(VARIANTS, args))
    for name in args.variants:
        variants[name] = {**table_summary(runs[name]), "command": command(), "seeds_run": args.seeds,
                          "best_epoch": sum(r["best_epoch"] for r in runs[name]) / len(runs[name]),
                          "seconds_per_epoch": sum(r["train_seconds"] / r["epochs"] for r in runs[name]) / len(runs[name])}
    ordered = {name: variants[name] for name in VARIANTS if name in variants}
    reference = None
    if args.dataset == "movielens-100k":
        reference = json.loads((RESULTS / "table2_ml100k.json").read_text())["variants"][REFERENCE]
    meta = {"machine": machine(), "command": command(), "dataset": args.dataset}
    plot(ordered, reference, meta, RESULTS / f"{stem}.png")
    write_results(stem, {"meta": meta, "variants": ordered, "runs": runs}, markdown(ordered, reference, meta))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
