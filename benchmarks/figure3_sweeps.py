"""Benchmark: the paper's Figure 3 on MovieLens-100K -- HyMiRec's accuracy against the number of
refined interests s (1..5, w = 4) and the window of future targets w (1, 2, 4, 8, 16; s = 2).

Every point is Table 4's "with DMIL" row (Table 2's HyMiRec trained with DMIL:
``table4_ablations.py``) with s or w changed, 3 seeds, each run in its own process through
``hymirec train``. The points s = 2, w = 4 and s = 2, w = 1 are Table 4's "with DMIL" and "with
DMIL, w = 1" runs, read from ``table4_ablations.json`` rather than trained twice. Results measured
on another base are dropped, not mixed. Results: ``benchmarks/results/figure3_sweeps.{json,md,png}``
-- R@10 and N@10 (test, history masked) with error bars of one std over seeds, and the validation
N@10 each run was selected on.

    .venv/bin/python benchmarks/table4_ablations.py --slots 2 --threads 1 --variants "with DMIL (2 interests, window targets)" "with DMIL, w = 1"
    .venv/bin/python benchmarks/figure3_sweeps.py --slots 2 --threads 1 [--s 1 3] [--w 8 16]
    .venv/bin/python benchmarks/figure3_sweeps.py --s --w       # tables and plot from the saved runs only
"""

from __future__ import annotations

import argparse
import json

from common import RESULTS, ROOT, command, machine, new_figure, positive, save_figure, write_results
from table4_ablations import VARIANTS as TABLE4
from variants import add_variant_arguments, plus_minus, run_variants, short, table_summary, trained_on

S_VALUES, W_VALUES = [1, 2, 3, 4, 5], [1, 2, 4, 8, 16]
FULL_S, FULL_W = 2, 4
# Points that are Table 4 variants: (s, w) -> its variant name there.
FROM_TABLE4 = {(FULL_S, FULL_W): "with DMIL (2 interests, window targets)", (FULL_S, 1): "with DMIL, w = 1"}
BASE = TABLE4[FROM_TABLE4[FULL_S, FULL_W]][1]
SHOWN = ["recall@10", "ndcg@10"]


def point_name(s: int, w: int) -> str:
    return f"s={s}, w={w}"


def variant(s: int, w: int) -> tuple[str, list[str]]:
    """The (config, overrides) of one sweep point."""
    return "hymirec", [*BASE, f"model.llm.interests={s}", f"train.loss.window={w}"]


def plot(points: dict[str, dict], path) -> None:
    fig, axes = new_figure(1, 2, figsize=(10, 4))
    for ax, (label, values, key) in zip(axes, [("s (refined interests), w = 4", S_VALUES, "s"),
                                               ("w (window of future targets), s = 2", W_VALUES, "w")]):
        for metric in SHOWN:
            xs, means, stds = [], [], []
            for v in values:
                name = point_name(v, FULL_W) if key == "s" else point_name(FULL_S, v)
                if name in points:
                    stat = points[name]["test_masked"][metric]
                    xs.append(v), means.append(stat["mean"]), stds.append(stat["std"])
            ax.errorbar(xs, means, yerr=stds, marker="o", capsize=4, label=short(metric))
        ax.set_xlabel(label)
        ax.set_ylabel("test, history masked")
        if key == "w":
            ax.set_xscale("log", base=2)
        ax.set_xticks(values, [str(v) for v in values])
        ax.grid(alpha=0.3)
        ax.legend()
    save_figure(fig, path, "HyMiRec with DMIL on MovieLens-100K: mean ± std over seeds")


def markdown(points: dict[str, dict], meta: dict) -> str:
    lines = ["## Figure 3 on MovieLens-100K: HyMiRec against s and w\n",
             f"Machine of the last call: {meta['machine']}; of each point: the last column. Command: "
             f"`{meta['command']}`. Mean ± std over seeds; test with the history masked; the other settings are "
             "Table 4's \"with DMIL\" row's. Plot: `figure3_sweeps.png`.\n",
             "| s | w | R@10 | N@10 | R@50 | N@50 | valid N@10 | source | machine |", "|---" * 9 + "|"]
    for name, p in points.items():
        t = p["test_masked"]
        cells = [plus_minus(t[m]) for m in ("recall@10", "ndcg@10", "recall@50", "ndcg@50")]
        lines.append(f"| {p['s']} | {p['w']} | " + " | ".join(cells) + f" | {plus_minus(p['valid_ndcg@10'])} "
                     f"| {p['source']} | {p.get('machine', meta['machine'])} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--s", nargs="*", type=positive, default=[s for s in S_VALUES if (s, FULL_W) not in FROM_TABLE4],
                        help="values of s trained now at w = 4 (the rest are read from earlier results)")
    parser.add_argument("--w", nargs="*", type=positive, default=[w for w in W_VALUES if (FULL_S, w) not in FROM_TABLE4],
                        help="values of w trained now at s = 2")
    add_variant_arguments(parser, ROOT / "runs" / "benchmarks" / "figure3")
    args = parser.parse_args()

    wanted = {(s, FULL_W) for s in args.s} | {(FULL_S, w) for w in args.w}
    table4 = [point for point in wanted if point in FROM_TABLE4]
    if table4:
        parser.error(f"{sorted(table4)} are Table 4 runs: train them with table4_ablations.py")
    trained = {point_name(s, w): (s, w) for s, w in sorted(wanted)}
    variants = {name: variant(s, w) for name, (s, w) in trained.items()}
    args.variants = list(variants)

    path = RESULTS / "figure3_sweeps.json"
    previous = json.loads(path.read_text()) if path.exists() else {}
    if previous.get("meta", {}).get("base") != BASE:
        previous = {}  # points of another base do not belong on this figure
    points, runs = previous.get("points", {}), previous.get("runs", {})
    runs.update(run_variants(variants, args))
    for name, (s, w) in trained.items():
        points[name] = {**table_summary(runs[name]), "s": s, "w": w, "source": command(),
                        "machine": trained_on(runs[name])}
    table4_path = RESULTS / "table4_ablations.json"
    table4 = json.loads(table4_path.read_text()) if table4_path.exists() else {"runs": {}}
    for (s, w), name in FROM_TABLE4.items():
        if name in table4["runs"]:
            points[point_name(s, w)] = {**table_summary(table4["runs"][name]), "s": s, "w": w,
                                        "source": f"table4_ablations.json, {name!r}",
                                        "machine": table4["variants"][name]["machine"]}
    order = [point_name(s, FULL_W) for s in S_VALUES] + [point_name(FULL_S, w) for w in W_VALUES if w != FULL_W]
    ordered = {name: points[name] for name in order if name in points}
    meta = {"machine": machine(), "command": command(), "seeds": args.seeds, "base": BASE}
    plot(ordered, RESULTS / "figure3_sweeps.png")
    write_results("figure3_sweeps", {"meta": meta, "points": ordered, "runs": runs}, markdown(ordered, meta))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
