"""Benchmark: does a trained HyMiRec use its long history? Each finished run of a Table 2 variant
is evaluated twice on the same weights, once reading what it was trained to read (its
``data.max_len`` latest items: the last ``llm.recent`` through the LLM recommender, those before
them through the lightweight recommender) and once with the long history cut (the last
``llm.recent`` items only, so that its coarse tokens are masked as for a user with no earlier
history).

A model that learned something from its long history loses accuracy when it is cut, most for the
users with the longest histories; one that did not scores the same. This asks the question at
inference, on one set of weights per seed, so that training noise (the seed spread that a
"with vs without the lightweight recommender" comparison of separately trained models carries)
does not enter it: the change is paired by run, and by run and history-length group.

Run folders are Table 2's (``benchmarks/table2_ml100k.py``, under ``--out``, per ``--dataset``);
nothing is trained. Results: ``benchmarks/results/long_history_probe_<dataset>[_cut<N>].{json,md,png}``.

    .venv/bin/python benchmarks/long_history_probe.py --dataset movielens-small --seeds 1 2 3 4 5 \\
        --variants "hymirec text+ID tiled EMA identity head long context"

A seed whose run has not finished is left out (each table lists the seeds it read). Any other
model of Table 2 is probed the same way with ``--cut N`` (its cut reading reads the last N items):
``--variants "sasrec max_len 200" --cut 50`` asks whether SASRec's longer input is what it reads.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from common import ML100K, RESULTS, ROOT, command, machine, new_figure, save_figure, write_results
from variants import history_length_summary, mean_std, plus_minus, run_name, table_header

from hymirec.evaluation.inference import evaluate_splits
from hymirec.runs.restored import RestoredRun

READINGS = ("long history", "recent items only")


def probe(run_dir: Path, cut: int | None = None) -> dict:
    """The run's validation and masked test metrics (overall and by history length) under each
    of ``READINGS``, with how many latest items each read: the cut reads the last ``cut`` items
    (default: a HyMiRec run's ``llm.recent``; any other model needs it given)."""
    run = RestoredRun.load(run_dir)
    hymirec = hasattr(run.model, "lightweight")
    if cut is None:
        if not hymirec:
            raise SystemExit(f"{run_dir} is not a HyMiRec run: give --cut, the items its cut reading reads")
        cut = run.config.model_config.llm.recent
    if (hymirec and run.model.lightweight is None) or run.max_len <= cut:
        raise SystemExit(f"{run_dir} reads no long history (no lightweight recommender, or "
                         f"data.max_len {run.max_len} <= {cut} items): nothing to cut")
    out = {}
    for reading, max_len in zip(READINGS, (run.max_len, cut)):
        with run.autocast():
            metrics = evaluate_splits(run.model, run.split, run.config.eval, max_len, run.cosine)
        out[reading] = {"max_len": max_len, "valid": metrics["valid"], "test_masked": metrics["test_masked"],
                        "test_by_history_length": metrics["test_by_history_length"]}
    return out


def summarise(runs: list[dict]) -> dict:
    """Per reading: how many items it read, and mean ± std over runs of validation and test N@10 /
    R@10 and N@10 by history length; and the paired change (long history − cut) of each, per run."""
    out = {"seeds": [r["seed"] for r in runs],
           "max_len": {reading: runs[0][reading]["max_len"] for reading in READINGS}}
    for reading in READINGS:
        read = [{**r[reading], "seed": r["seed"]} for r in runs]
        out[reading] = {"valid_ndcg@10": mean_std([r["valid"]["ndcg@10"] for r in read], named=True),
                        **{f"test_{m}": mean_std([r["test_masked"][m] for r in read], named=True)
                           for m in ("ndcg@10", "recall@10")},
                        "by_history_length": history_length_summary(read)["groups"]}

    def paired(metric) -> dict:
        deltas = [metric(r[READINGS[0]]) - metric(r[READINGS[1]]) for r in runs]
        return {**mean_std(deltas, named=True), "per_seed": deltas}

    out["change"] = {"valid_ndcg@10": paired(lambda r: r["valid"]["ndcg@10"]),
                     "test_ndcg@10": paired(lambda r: r["test_masked"]["ndcg@10"]),
                     "test_recall@10": paired(lambda r: r["test_masked"]["recall@10"])}
    groups = [g["history"] for g in runs[0][READINGS[0]]["test_by_history_length"]]
    out["change"]["by_history_length"] = {
        group: paired(lambda r, i=i: r["test_by_history_length"][i]["ndcg@10"]) for i, group in enumerate(groups)}
    return out


def markdown(summary: dict[str, dict], meta: dict) -> str:
    lines = [f"## Does a trained model use its long history? ({meta['dataset']})\n",
             f"Machine: {meta['machine']}. Command: `{meta['command']}`. Each run's best weights evaluated "
             "reading its whole trained input (`long history`) and the last `llm.recent` items only "
             "(`recent items only`; the last `--cut` items where given); test with the history masked. "
             "Change: long history − cut, paired by run, mean ± std over seeds (per seed in the JSON). "
             "Nothing is trained.\n"]
    for variant, s in summary.items():
        several = len(s["seeds"]) > 1
        lines += [f"### {variant} (seeds {', '.join(map(str, s['seeds']))})", "",
                  *table_header(["reading", "items read", "valid N@10", "test N@10", "test R@10"])]
        for reading in READINGS:
            r = s[reading]
            lines.append(f"| {reading} | {s['max_len'][reading]} | {plus_minus(r['valid_ndcg@10'], several=several)} "
                         f"| {plus_minus(r['test_ndcg@10'], several=several)} "
                         f"| {plus_minus(r['test_recall@10'], several=several)} |")
        c = s["change"]
        lines += [f"| change | | {plus_minus(c['valid_ndcg@10'], several=several)} "
                  f"| {plus_minus(c['test_ndcg@10'], several=several)} "
                  f"| {plus_minus(c['test_recall@10'], several=several)} |", ""]
        groups = s[READINGS[0]]["by_history_length"]
        lines += ["Test N@10 by history length (items before the test item):", "",
                  *table_header(["reading", *(f"{g} ({v['users']} users)" for g, v in groups.items())])]
        for reading in READINGS:
            cells = [plus_minus(v["ndcg@10"], 3, several) for v in s[reading]["by_history_length"].values()]
            lines.append(f"| {reading} | " + " | ".join(cells) + " |")
        lines += ["| change | " + " | ".join(plus_minus(v, 3, several)
                                              for v in c["by_history_length"].values()) + " |", ""]
    return "\n".join(lines) + "\n"


def plot(summary: dict[str, dict], path: Path) -> None:
    """Test N@10 by history length, each variant in its panel, both readings."""
    fig, axes = new_figure(1, len(summary), figsize=(6 * len(summary), 4), squeeze=False)
    for ax, (variant, s) in zip(axes[0], summary.items()):
        for reading in READINGS:
            groups = s[reading]["by_history_length"]
            means = np.array([g["ndcg@10"]["mean"] for g in groups.values()])
            stds = np.array([g["ndcg@10"]["std"] for g in groups.values()])
            ax.errorbar(list(groups), means, yerr=stds, marker="o", capsize=3,
                        label=f"{reading} ({s['max_len'][reading]} items)")
        ax.set(title=variant, xlabel="items before the test item", ylabel="test N@10 (history masked)")
        ax.legend()
    save_figure(fig, path, "A trained model evaluated with and without its long history")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", required=True, help="Table 2 variants whose runs are probed")
    parser.add_argument("--dataset", default=ML100K)
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--cut", type=int, default=None,
                        help="items the cut reading reads (default: a HyMiRec run's llm.recent; needed for other "
                             "models, e.g. 50 for SASRec trained on 200)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--out", default=str(ROOT / "runs" / "benchmarks"), help="Table 2's run folders")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    folder = Path(args.out) if args.dataset == ML100K else Path(args.out) / args.dataset
    summary, runs = {}, {}
    for variant in args.variants:
        # A seed whose run has not finished (no results.json) is left out; the table lists the seeds.
        finished = [s for s in args.seeds if (folder / run_name(variant, s) / "results.json").is_file()]
        if not finished:
            parser.error(f"no finished run of {variant!r} under {folder} for seeds {args.seeds}")
        runs[variant] = [{**probe(folder / run_name(variant, seed), args.cut), "seed": seed} for seed in finished]
        summary[variant] = summarise(runs[variant])
    meta = {"machine": machine(), "command": command(), "dataset": args.dataset}
    stem = f"long_history_probe_{args.dataset}" + ("" if args.cut is None else f"_cut{args.cut}")
    write_results(stem, {"meta": meta, "variants": summary, "runs": runs}, markdown(summary, meta))
    plot(summary, RESULTS / f"{stem}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
