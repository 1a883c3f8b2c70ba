"""Benchmark: a controlled multi-interest study on synthetic users with known latent interests.

A dataset from ``hymirec.data.synthetic.generate_synthetic`` (each user draws items from 2-4
latent clusters) is saved into the data directory under ``--name``, with item vectors that carry
the cluster structure (each item: its cluster's random unit centre plus Gaussian noise of norm
about ``--vector-noise``, normalised) exported with ``hymirec.encoders.export.write_embeddings``.
HyMiRec (``configs/hymirec_synthetic.yaml``, item vectors only: ``model.items.item_ids=false``)
is trained through ``hymirec train`` subprocesses, 3 seeds per variant: DMIL with s = the largest
number of true interests, DMIL with s = 2, and the single-interest next-item ablation (as
``table4_ablations.py``'s "w/o DMIL"). Each run is then restored, its test users' s interest
vectors and the catalogue are encoded, and every interest is read by its top-``--top-k`` items
(``hymirec.analysis.interests``): purity, coverage of the user's true interests, distinct
clusters. With ``data.test_window`` in the split (when the installed hymirec has it) the last
``--window`` items of each user are the test window and the runs report window recall.

Results: ``<results>/synthetic_interests.{json,md,png}`` (mean ± std over seeds, and whether DMIL
beats single interest on window recall@10 by more than the larger seed std).

    .venv/bin/python benchmarks/synthetic_interests.py --slots 2 --threads 1 [--seeds 1 2 3] [--set train.device=cuda]

A quick end-to-end check (1 seed, 2 epochs, small data, nothing written under benchmarks/):

    .venv/bin/python benchmarks/synthetic_interests.py --seeds 1 --users 300 --items 300 --clusters 8 \\
        --set train.epochs=2 --out /tmp/si_runs --results /tmp/si_results --data-dir /tmp/si_data
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from common import RESULTS, ROOT, command, machine, new_figure, save_figure, write_results
from variants import NEXT_ITEM, add_variant_arguments, mean_std, plus_minus, run_name, run_variants

from hymirec.analysis import analyse_interests
from hymirec.data import paths
from hymirec.data.fetch import save_dataset
from hymirec.data.synthetic import generate_synthetic
from hymirec.encoders.export import write_embeddings
from hymirec.evaluation.evaluator import Evaluator
from hymirec.evaluation.inference import embed_catalogue, encode_users
from hymirec.evaluation.lists import interest_coverage, window_recall
from hymirec.runs.restored import RestoredRun

CONFIG = str(ROOT / "configs" / "hymirec_synthetic.yaml")
SINGLE = "single interest (next item)"
WINDOW_METRICS = ["window_recall@10", "window_recall@50"]
ROUND_ROBIN_METRICS = ["rr_window_recall@10", "rr_window_recall@50", "rr_interests_in_top10"]
NEXT_METRICS = ["recall@10", "ndcg@10"]
INTEREST_METRICS = ["purity", "coverage", "coverage_bound", "distinct", "on_target"]


def variants(max_interests: int) -> dict[str, tuple[str, list[str]]]:
    """DMIL with s = ``max_interests`` and s = 2, and the single-interest next-item ablation."""
    out = {f"DMIL s={max_interests}": (CONFIG, [f"model.llm.interests={max_interests}"])}
    out["DMIL s=2"] = (CONFIG, ["model.llm.interests=2"])
    out[SINGLE] = (CONFIG, ["model.llm.interests=1", NEXT_ITEM])
    return out


def cluster_vectors(clusters: np.ndarray, dim: int, noise: float, seed: int) -> torch.Tensor:
    """``[N + 1, dim]`` unit vectors (row 0 zero): item i is its cluster's random unit centre plus
    isotropic Gaussian noise of expected norm ``noise``, normalised (so an item's cosine to its
    centre is about ``1 / sqrt(1 + noise**2)``, to another cluster's about 0)."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.nn.functional.normalize(torch.randn(int(clusters.max()) + 1, dim, generator=g), dim=-1)
    vectors = centres[torch.as_tensor(clusters.copy())] + noise / dim**0.5 * torch.randn(len(clusters), dim, generator=g)
    vectors = torch.nn.functional.normalize(vectors, dim=-1)
    return torch.cat([torch.zeros(1, dim), vectors])


def make_data(args: argparse.Namespace) -> tuple[Path, Path, dict]:
    """Generate, save and export; returns the dataset folder, the vectors file and the sizes."""
    start = time.perf_counter()
    dataset = generate_synthetic(
        args.users, args.items, args.clusters, interests=(args.min_interests, args.max_interests),
        mean_seq_len=args.mean_seq_len, switch_prob=args.switch_prob, noise=args.noise,
        seed=args.data_seed, name=args.name,
    )  # fmt: skip
    folder = save_dataset(dataset, paths.dataset_path(args.name, args.data_dir))
    clusters = dataset.items["cluster"].to_numpy(np.int64)
    source = {"generator": "benchmarks/synthetic_interests.py cluster_vectors", "dim": args.dim,
              "vector_noise": args.vector_noise, "seed": args.data_seed}
    vectors_path = paths.data_dir(args.data_dir) / "embeddings" / f"{args.name}-clusters.safetensors"
    write_embeddings(vectors_path, cluster_vectors(clusters, args.dim, args.vector_noise, args.data_seed),
                     dataset, source)
    lengths = dataset.interactions.groupby("user").size()
    sizes = {"users": args.users, "items": args.items, "clusters": args.clusters,
             "interests_per_user": [args.min_interests, args.max_interests],
             "interactions": len(dataset.interactions), "mean_seq_len": float(lengths.mean()),
             "median_seq_len": float(lengths.median()), "vector_dim": args.dim,
             "vector_noise": args.vector_noise, "switch_prob": args.switch_prob, "noise": args.noise,
             "data_seed": args.data_seed, "seconds": time.perf_counter() - start}
    return folder, vectors_path, sizes


def interest_measures(run_dir: Path, top_k: int) -> dict[str, float]:
    """Purity / coverage / distinct / on-target (means over test users) of one finished run. A run
    trained on a GPU is read on the CPU where there is none (``--reuse`` on another machine)."""
    run = RestoredRun.load(run_dir, None if torch.cuda.is_available() else ["train.device=cpu"])
    examples = run.split.examples("test")
    with run.autocast():
        users = encode_users(run.model, examples, run.max_len, cosine=True)
        items = embed_catalogue(run.model, cosine=True, progress=False)
    dataset = run.split.dataset
    clusters = np.concatenate([[0], dataset.items.sort_values("item")["cluster"].to_numpy(np.int64)])
    truth_by_user = dict(zip(dataset.users["user"].to_numpy(), dataset.users["interests"]))
    truth = [np.asarray(truth_by_user[int(u)]).tolist() for u in examples.users]
    out = analyse_interests(users, items, clusters, truth, k=top_k).summary()
    # The same top-K lists merged round-robin (each interest's best in turn) instead of by max.
    histories = [examples.history(i)[0] for i in range(len(examples))]
    top = Evaluator().top_k(users, items, histories, 50, keep=examples.windows, merge="round_robin")
    out.update({f"rr_{m}": v for m, v in window_recall(top.items, examples.windows, [10, 50]).items()})
    out["rr_interests_in_top10"] = interest_coverage(top.interests[:, :10])
    return out


def summarise(runs: list[dict]) -> dict:
    out = {}
    for m in WINDOW_METRICS:
        values = [r.get("test_window", {}).get(m) for r in runs]
        out[m] = mean_std(values) if all(v is not None for v in values) else None
    for m in NEXT_METRICS:
        out[m] = mean_std([r["test_masked"][m] for r in runs])
    for m in INTEREST_METRICS:
        out[m] = mean_std([r["interests"][m] for r in runs])
    for m in ROUND_ROBIN_METRICS:
        out[m] = mean_std([r["interests"][m] for r in runs])
    # How many of the s interests place items in the top-10 (the run's own test_lists.coverage@10).
    out["interests_in_top10"] = mean_std([r.get("test_lists", {}).get("coverage@10", float("nan")) for r in runs])
    # wall_seconds: the whole `hymirec train` process (absent for runs read with --reuse).
    out["wall_seconds"] = mean_std([r.get("wall_seconds", float("nan")) for r in runs])
    out["train_seconds"] = mean_std([r.get("train_seconds", float("nan")) for r in runs])
    out["epochs"] = mean_std([r.get("epochs", float("nan")) for r in runs])
    return out


def verdict(summary: dict, dmil: str, metric: str) -> dict:
    """DMIL vs single interest on ``metric`` (a window recall, max or round-robin merged lists)."""
    (a, sa), (b, sb) = summary[dmil][metric], summary[SINGLE][metric]
    spread = max(sa, sb)
    return {"metric": metric, "dmil": dmil, "delta": a - b, "spread": spread, "beats": bool(a - b > spread)}


def markdown(summary: dict, meta: dict, results: list[dict]) -> str:
    s = meta["sizes"]
    lines = [
        "## Multi-interest study on synthetic users with known interests\n",
        f"Machine: {meta['machine']}. Command: `{meta['command']}`. Seeds {meta['seeds']}; mean ± std over seeds.\n",
        f"Data: {s['users']} users, {s['items']} items in {s['clusters']} clusters, "
        f"{s['interests_per_user'][0]}-{s['interests_per_user'][1]} true interests per user, "
        f"{s['interactions']} interactions (mean sequence {s['mean_seq_len']:.1f}), item vectors of dimension "
        f"{s['vector_dim']} (cluster centre + noise {s['vector_noise']}); a user switches interest at each step with "
        f"probability {s['switch_prob']}. Test: "
        + f"the last {meta['test_window']} items of each user (window recall, history masked)"
        + f"; interests read by their top-{meta['top_k']} items by cosine.\n",
        "| variant | window R@10 | window R@50 | window R@10, round-robin | window R@50, round-robin | next-item R@10 | next-item N@10 | purity | coverage (bound) | distinct | on target | interests in top 10 (round-robin) | epochs | train s (process s) |",
        "|---" * 14 + "|",
    ]
    for name, v in summary.items():
        cells = [plus_minus(v[m]) for m in (*WINDOW_METRICS, *ROUND_ROBIN_METRICS[:2], *NEXT_METRICS)]
        cells += [plus_minus(v["purity"], 3), f"{plus_minus(v['coverage'], 3)} ({v['coverage_bound'][0]:.3f})",
                  plus_minus(v["distinct"], 2), plus_minus(v["on_target"], 3),
                  f"{plus_minus(v['interests_in_top10'], 2)} ({v['rr_interests_in_top10'][0]:.2f})",
                  plus_minus(v["epochs"], 1), f"{plus_minus(v['train_seconds'], 0)} ({v['wall_seconds'][0]:.0f})"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", ("purity: share of an interest's top items from its majority cluster; coverage: share of a user's "
                   "true interests that are some interest's majority cluster (bound: the most s interests can cover, "
                   "min(s, t) / t for t true interests); distinct: distinct majority clusters among the s interests; "
                   "on target: share of the s interests whose majority cluster is a true interest; interests in top 10: how "
                   "many of the s interests place an item in the test top-10 list. Max: each item ranked by its best interest (the "
                   "shared evaluator's merge); round-robin: each interest's best item in turn, strongest first, "
                   "duplicates skipped (`Evaluator.top_k(merge=...)`, `eval.merge`)."), ""]
    for result in results:
        word = "beats" if result["beats"] else "does not beat"
        lines.append(f"- **{result['dmil']} {word} single interest on {result['metric']}** by more than the larger "
                     f"seed std: {result['delta']:+.4f} against a spread of {result['spread']:.4f}"
                     + (" (one seed: no spread measured)." if len(meta["seeds"]) < 2 else "."))
    return "\n".join(lines) + "\n"


def plot(summary: dict, path: Path) -> None:
    names = list(summary)
    x = np.arange(len(names))
    fig, axes = new_figure(1, 2, figsize=(11, 4))
    recall = WINDOW_METRICS + ROUND_ROBIN_METRICS[:2]
    for ax, metrics, title in ((axes[0], recall, "recall (test)"),
                               (axes[1], ["purity", "coverage", "on_target"], "interests vs true clusters")):
        width = 0.8 / len(metrics)
        for i, m in enumerate(metrics):
            ax.bar(x + (i - (len(metrics) - 1) / 2) * width, [summary[n][m][0] for n in names], width,
                   yerr=[summary[n][m][1] for n in names], capsize=3, label=m)
        ax.set_xticks(x, names, fontsize=8)
        ax.set_title(title)
        ax.legend(fontsize=8)
    save_figure(fig, path)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=None,
                        help=f"subset of the variants (default all: DMIL s=MAX, DMIL s=2, {SINGLE!r})")
    parser.add_argument("--name", default="synthetic-interests", help="dataset name in the data directory")
    parser.add_argument("--data-dir", default=None, help="data directory (default $HYMIREC_DATA_DIR or ~/.cache/hymirec)")
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--items", type=int, default=1500)
    parser.add_argument("--clusters", type=int, default=10)
    parser.add_argument("--min-interests", type=int, default=2)
    parser.add_argument("--max-interests", type=int, default=4, help="also the s of the first DMIL variant")
    parser.add_argument("--mean-seq-len", type=float, default=130.0,
                        help="before repeated items are dropped (130 gives a mean of about 91 at the default sizes)")
    parser.add_argument("--switch-prob", type=float, default=0.2)
    parser.add_argument("--noise", type=float, default=0.05, help="share of interactions with a random item")
    parser.add_argument("--dim", type=int, default=64, help="item vector dimension")
    parser.add_argument("--vector-noise", type=float, default=1.0, help="noise norm around each cluster centre")
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--window", type=int, default=5, help="data.test_window: test items per user")
    parser.add_argument("--top-k", type=int, default=20, help="top items by cosine that characterise an interest")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder of the result files")
    parser.add_argument("--tables-only", action="store_true",
                        help="rebuild the Markdown and plot from the JSON in --results (no training)")
    add_variant_arguments(parser, ROOT / "runs" / "benchmarks" / "synthetic_interests")
    args = parser.parse_args()

    def need(ok: bool, message: str) -> None:
        if not ok:
            parser.error(message)

    for opt in ("users", "items", "clusters", "min_interests", "dim", "window", "top_k", "slots", "threads"):
        need(getattr(args, opt) >= 1, f"--{opt.replace('_', '-')} must be >= 1, got {getattr(args, opt)}")
    need(args.min_interests <= args.max_interests <= args.clusters,
         "need --min-interests <= --max-interests <= --clusters")
    need(args.clusters <= args.items, "need --clusters <= --items")
    need(args.top_k <= args.items, "need --top-k <= --items")
    need(args.max_interests >= 2, "--max-interests must be >= 2 (the study compares s >= 2 with s = 1)")
    need(args.mean_seq_len >= args.window + 3,
         f"--mean-seq-len must leave room for the test window and training (>= {args.window + 3})")
    need(0 <= args.switch_prob <= 1 and 0 <= args.noise <= 1, "--switch-prob and --noise must be in [0, 1]")
    need(args.vector_noise >= 0, "--vector-noise must be >= 0")
    need(len(args.seeds) >= 1 and len(set(args.seeds)) == len(args.seeds), "--seeds must be distinct, at least one")
    known = variants(args.max_interests)
    args.variants = args.variants or list(known)
    unknown = [v for v in args.variants if v not in known]
    need(not unknown, f"unknown variants {unknown}; choose from {list(known)}")
    return args


def main() -> int:
    args = parse_args()
    if args.tables_only:
        saved = json.loads((args.results / "synthetic_interests.json").read_text())
        write_tables(saved["summary"], saved["meta"], saved["runs"], args.results)
        return 0
    window = args.window
    folder, vectors, sizes = make_data(args)
    print(f"dataset {folder}: {json.dumps(sizes)}", flush=True)
    base = [f"data.dataset={args.name}", f"model.items.vectors={vectors}", "model.items.item_ids=false"]
    if args.data_dir:
        base.append(f"data.data_dir={Path(args.data_dir).expanduser().resolve()}")
    base.append(f"data.test_window={window}")
    user_set = args.set
    args.set = base + user_set  # the user's --set last: it wins
    runs = run_variants(variants(args.max_interests), args)
    for name in args.variants:
        for seed, result in zip(args.seeds, runs[name]):
            result["interests"] = interest_measures(Path(args.out) / run_name(name, seed), args.top_k)

    summary = {name: summarise(runs[name]) for name in args.variants}
    meta = {"machine": machine(), "command": command(), "seeds": args.seeds, "sizes": sizes, "test_window": window,
            "top_k": args.top_k, "overrides": args.set, "dataset": str(folder), "vectors": str(vectors)}
    write_tables(summary, meta, runs, args.results)
    return 0


def write_tables(summary: dict, meta: dict, runs: dict, folder: Path) -> None:
    """The JSON, Markdown and plot of a study, with a verdict for every DMIL variant against single interest."""
    results = [verdict(summary, name, metric) for metric in ("window_recall@10", "rr_window_recall@10")
               for name in summary if name != SINGLE] if SINGLE in summary else []
    write_results("synthetic_interests", {"meta": meta, "summary": summary, "verdicts": results, "runs": runs},
                  markdown(summary, meta, results), folder)
    plot(summary, folder / "synthetic_interests.png")


if __name__ == "__main__":
    raise SystemExit(main())
