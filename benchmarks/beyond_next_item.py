"""Benchmark: what next-item recall does not show, on MovieLens-100K -- window recall, intra-list
diversity and interest coverage of the top-10, and cold-start recall, for HyMiRec (DMIL and its
single-interest ablation), HLLM and SASRec.

Two splits, each model trained on both, 3 seeds, every run in its own process through
``hymirec train`` from ``configs/<model>_ml100k.yaml`` (HyMiRec and HLLM with text + ID items,
the variant Table 2 lists them in, and with text alone, which is what a cold item has):

* **window**: ``data.test_window = w`` (default 5): the last w items of each user are held out;
  window recall@K is the share of them the top-K holds (history masked). Intra-list diversity
  (mean pairwise cosine distance of the top-10 in the pretrained MiniLM text space, the same
  ruler for every model: ``eval.diversity_vectors``) and interest coverage (distinct interests
  among the top-10) come from these runs.
* **cold**: leave-one-out with ``data.cold_items = p`` (default 0.2): a seeded share of the
  catalogue removed from every training sequence; cold-start recall is the recall over the test
  users whose target is one of those items.

Results: ``benchmarks/results/beyond_next_item.{json,md,png}``.

    .venv/bin/python benchmarks/beyond_next_item.py --slots 2 --threads 1 [--window 5] [--cold 0.2]
"""

from __future__ import annotations

import argparse
import json

from common import RESULTS, ROOT, command, machine, new_figure, preset_item_vectors, save_figure, write_results
from variants import NEXT_ITEM, add_variant_arguments, mean_std, plus_minus, run_variants, table_header

WINDOW_AND_COLD = ("window", "cold")
# Row -> (config, overrides, splits it is trained on).
MODELS = {
    "SASRec": ("sasrec", [], WINDOW_AND_COLD),
    "HLLM (text + ID)": ("hllm", ["model.items.item_ids=true"], WINDOW_AND_COLD),
    "HLLM (text)": ("hllm", ["model.items.item_ids=false"], WINDOW_AND_COLD),
    "HyMiRec, single interest": ("hymirec", ["model.llm.interests=1", NEXT_ITEM], WINDOW_AND_COLD),
    "HyMiRec, DMIL s = 2, w = 4": ("hymirec", [], WINDOW_AND_COLD),
    # Text only: an item never trained on has no learnt ID vector, only its text.
    "HyMiRec, DMIL (text)": ("hymirec", ["model.items.item_ids=false"], WINDOW_AND_COLD),
    # The same model with its lists merged round-robin: only the lists change, so only the window split.
    "HyMiRec, DMIL s = 2, w = 4, round-robin lists": ("hymirec", ["eval.merge=round_robin"], ("window",)),
}
KS = [10, 50, 200]


def share(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be a share in (0, 1), got {value}")
    return value


def window_size(text: str) -> int:
    value = int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"must be >= 2 (1 is leave-one-out), got {value}")
    return value


def summarise(window_runs: list[dict], cold_runs: list[dict] | None) -> dict:
    """A row: the window split's measures, and the cold split's (None when not trained on it)."""
    row = {
        "window_recall": {f"@{k}": mean_std([r["test_window"][f"window_recall@{k}"] for r in window_runs], named=True)
                          for k in KS},
        "next_item_ndcg@10": mean_std([r["test_masked"]["ndcg@10"] for r in window_runs], named=True),
        "ild@10": mean_std([r["test_lists"]["ild@10"] for r in window_runs], named=True),
        "coverage@10": mean_std([r["test_lists"]["coverage@10"] for r in window_runs], named=True),
        "split": {"window": window_runs[0]["split"]},
        "cold_recall": None, "cold_users": None, "warm_recall@10": None,
    }
    if cold_runs:
        row["cold_recall"] = {f"@{k}": mean_std([r["test_cold"][f"recall@{k}"] for r in cold_runs], named=True)
                              for k in KS}
        row["cold_users"] = cold_runs[0]["test_cold"]["users"]
        row["warm_recall@10"] = mean_std([r["test_masked"]["recall@10"] for r in cold_runs], named=True)
        row["split"]["cold"] = cold_runs[0]["split"]
    return row


def markdown(rows: dict[str, dict], meta: dict) -> str:
    row = next(iter(rows.values()))
    window = row["split"]["window"]
    cold_row = next(r for r in rows.values() if r["cold_recall"] is not None)
    sources = sorted({(r["machine"], r["command"]) for r in rows.values()})
    lines = ["## Beyond next-item recall on MovieLens-100K\n",
             f"Mean ± std over seeds {meta['seeds']}; history masked. Plot: `beyond_next_item.png`. Rows came from:\n",
             *[f"- {m}: `{c}`" for m, c in sources], "",
             f"### Window split: the last w = {window['test_window']} items held out "
             f"({window['eval_users']} users evaluated, {window['too_short']} too short)\n",
             "Diversity: mean pairwise cosine distance of the top-10 in the pretrained MiniLM text space; "
             "coverage: distinct interests among the top-10 (lists merged by max unless the row says otherwise).\n",
             *table_header(["model", *(f"window R@{k}" for k in KS), "next-item N@10", "diversity@10", "coverage@10"])]
    for name, r in rows.items():
        lines.append(f"| {name} | " + " | ".join(plus_minus(r["window_recall"][f"@{k}"]) for k in KS)
                     + "".join(f" | {plus_minus(r[m])}" for m in ("next_item_ndcg@10", "ild@10", "coverage@10")) + " |")
    lines += ["", f"### Cold start: {cold_row['split']['cold']['cold_items']} items ({meta['cold']:.0%}) removed from "
              f"training; {cold_row['cold_users']} test targets are among them\n",
              *table_header(["model", *(f"cold R@{k}" for k in KS), "all-target R@10"])]
    for name, r in rows.items():
        if r["cold_recall"] is not None:
            lines.append(f"| {name} | " + " | ".join(plus_minus(r["cold_recall"][f"@{k}"]) for k in KS)
                         + f" | {plus_minus(r['warm_recall@10'])} |")
    return "\n".join(lines) + "\n"


def plot(rows: dict[str, dict], path) -> None:
    panels = [("window recall@10", lambda r: r["window_recall"]["@10"]),
              ("window recall@50", lambda r: r["window_recall"]["@50"]),
              ("intra-list diversity@10", lambda r: r["ild@10"]),
              ("interest coverage@10", lambda r: r["coverage@10"]),
              ("cold-start recall@50", lambda r: r["cold_recall"]["@50"])]
    fig, axes = new_figure(1, len(panels), figsize=(4 * len(panels), 4))
    names = list(rows)
    for ax, (title, get) in zip(axes, panels):
        stats = [get(rows[n]) if rows[n]["cold_recall"] is not None or "cold" not in title else None for n in names]
        ax.bar(range(len(names)), [st["mean"] if st else 0 for st in stats], yerr=[st["std"] if st else 0 for st in stats],
               capsize=4, color=[f"C{i}" for i in range(len(names))])
        ax.set_xticks(range(len(names)), [n.replace(", ", ",\n") for n in names], fontsize=7, rotation=30, ha="right")
        ax.set_title(title)
    save_figure(fig, path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=window_size, default=5, help="items held out per user (data.test_window)")
    parser.add_argument("--cold", type=share, default=0.2, help="share of items removed from training (data.cold_items)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    add_variant_arguments(parser, ROOT / "runs" / "benchmarks" / "beyond")
    args = parser.parse_args()

    diversity = f"eval.diversity_vectors={preset_item_vectors()}"
    splits = {"window": [f"data.test_window={args.window}"], "cold": [f"data.cold_items={args.cold}"]}
    variants = {f"{name} [{split}]": (config, own + splits[split] + [diversity])
                for name, (config, own, trained_on) in MODELS.items() if name in args.models
                for split in trained_on}
    args.variants = list(variants)
    # Rows of models not run now are kept (each names its machine and command); the split must match.
    path = RESULTS / "beyond_next_item.json"
    previous = json.loads(path.read_text()) if path.exists() else {}
    if previous and (previous["meta"]["window"], previous["meta"]["cold"]) != (args.window, args.cold):
        previous = {}
    rows, runs = previous.get("models", {}), previous.get("runs", {})
    runs.update(run_variants(variants, args))
    for name in args.models:
        rows[name] = {**summarise(runs[f"{name} [window]"], runs.get(f"{name} [cold]")),
                      "machine": machine(), "command": command()}
    rows = {name: rows[name] for name in MODELS if name in rows}
    meta = {"seeds": args.seeds, "window": args.window, "cold": args.cold}
    plot(rows, RESULTS / "beyond_next_item.png")
    write_results("beyond_next_item", {"meta": meta, "models": rows, "runs": runs}, markdown(rows, meta))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
