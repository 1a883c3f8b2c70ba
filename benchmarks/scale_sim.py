"""Benchmark: HyMiRec's parts at industrial scale, on synthetic data shaped like the paper's.

The paper's industrial dataset has 571,958 users, 11.7M items and histories of 241 on average.
This machine holds a catalogue of ``--items`` (1M by default) 384-d item vectors (clustered like
text embeddings, ``hymirec.codebook.synthetic``) and measures, each part in a fresh process so its
peak memory is its own:

* **codebook**: a cosine residual codebook (3 layers x 256, float16 scales) fitted on a basepool
  of 100k and encoding the whole catalogue, in 1 process and split over 2 (torchrun, gloo):
  time, bytes of codes and scales against float32 vectors, reconstruction cosine;
* **export**: item texts of a synthetic catalogue through the shipped all-MiniLM-L6-v2
  (``export_pretrained_embeddings``), fp32 and bf16: items per second;
* **train**: one epoch of stage 2 (the HyMiRec preset, text vectors frozen, no ID table, DMIL
  against 1,024 shared sampled negatives, the codebook fitted once) on users whose histories
  hold ``--history-lengths`` items, by ``hymirec train`` in 1 process and under ``torchrun`` with 2
  (same global batch, the 2 cores shared): positions per second and peak memory per process;
* **evaluate**: the library's ``Evaluator`` (full ranking, history masked, 2 interests) over
  catalogues of ``--catalogue-sizes`` and item chunks of ``--chunks``: seconds and the peak
  memory above the vectors, against what a users x items score matrix would take.

Then the arithmetic for the paper's 11.7M items and 572k users, from the measured rates.

    .venv/bin/python benchmarks/scale_sim.py                     # about 20 minutes on 2 cores
    .venv/bin/python benchmarks/scale_sim.py --items 100000 --train-users 64 --results /tmp/out

Writes ``<results>/scale_sim.{json,md,png}``. Run it alone on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import RESULTS, ROOT, command, machine, new_figure, peak_meter, positive, save_figure, write_results

PAPER_ITEMS, PAPER_USERS, PAPER_HISTORY = 11_700_000, 571_958, 241
DIM = 384  # all-MiniLM-L6-v2's width, what the CPU preset compresses
SCORE_DIM = 256  # the CPU preset's item space (the LLM recommender's width)
INTERESTS = 2


# ---------------------------------------------------------------- parts (one process each)
def _world():
    import torch

    from hymirec.distributed import join_world
    return join_world("gloo", torch.device("cpu"))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def part_codebook(args: argparse.Namespace) -> dict:
    """Fit on the basepool, then encode the catalogue (split over the ranks when launched so)."""
    from hymirec.codebook import CodebookConfig, ResidualCodebook
    from hymirec.codebook.synthetic import clustered_embeddings

    world = _world()
    start = time.perf_counter()
    vectors = clustered_embeddings(args.items, DIM, seed=0)
    generate = time.perf_counter() - start
    book = ResidualCodebook(CodebookConfig(variant="cosine", layers=3, k=256, scale_dtype="float16"))
    start = time.perf_counter()
    book.fit(vectors)
    fit = time.perf_counter() - start
    world.barrier()
    start = time.perf_counter()
    codes, scales = book.encode(vectors, world=world)
    encode = time.perf_counter() - start
    sample = vectors[:: max(1, len(vectors) // 100_000)]
    cosines = book.encode_with_quality(sample).cosines.mean(axis=0)
    return {"processes": world.size, "generate_s": generate, "fit_s": fit, "encode_s": encode,
            "items_per_s": len(vectors) / encode, "code_bytes": int(codes.nbytes + scales.nbytes),
            "fp32_bytes": int(vectors.nbytes), "bytes_per_item": (codes.nbytes + scales.nbytes) / len(vectors),
            "cosine_per_layer": [float(c) for c in cosines], "basepool": book.stats().basepool_size,
            "peak_mb": _peak_mb()}


def part_export(args: argparse.Namespace) -> dict:
    """MiniLM over a synthetic catalogue's texts, through the library's cached export (a fresh cache)."""
    from hymirec.data.synthetic import generate_synthetic
    from hymirec.encoders.config import ItemTextConfig
    from hymirec.encoders.export import export_pretrained_embeddings

    dataset = generate_synthetic(n_users=10, n_items=args.export_items, n_clusters=20, seed=0)
    rows = []
    for precision in ("fp32", "bf16"):
        settings = ItemTextConfig(template="{title}. Tags: {tags}. {description}", max_tokens=32, precision=precision)
        with tempfile.TemporaryDirectory() as cache:
            os.environ["HYMIREC_DATA_DIR"] = cache
            start = time.perf_counter()
            export_pretrained_embeddings(dataset, settings, progress=False)
            seconds = time.perf_counter() - start
        rows.append({"precision": precision, "items": dataset.n_items, "seconds": seconds,
                     "items_per_s": dataset.n_items / seconds})
    return {"rows": rows, "peak_mb": _peak_mb()}


def part_evaluate(args: argparse.Namespace) -> dict:
    """One full-ranking evaluation of ``--eval-users`` users (2 interests each, 240 items masked)
    over ``--catalogue`` items in chunks of ``--chunk``."""
    import torch

    from hymirec.evaluation.evaluator import Evaluator

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    items = torch.nn.functional.normalize(torch.randn(args.catalogue, SCORE_DIM, generator=torch.Generator().manual_seed(0)), dim=-1)
    users = torch.nn.functional.normalize(torch.randn(args.eval_users, INTERESTS, SCORE_DIM), dim=-1)
    targets = rng.integers(1, args.catalogue, args.eval_users)
    histories = [rng.integers(1, args.catalogue, PAPER_HISTORY - 1) for _ in range(args.eval_users)]
    evaluator = Evaluator(ks=(10, 50, 200), batch_size=args.eval_batch, item_chunk=args.chunk)
    start_memory, stop_memory = peak_meter(torch.device("cpu"))
    base = start_memory()
    start = time.perf_counter()
    evaluator.evaluate(users, items, targets, histories)
    seconds = time.perf_counter() - start
    return {"catalogue": args.catalogue, "chunk": args.chunk, "users": args.eval_users, "batch": args.eval_batch,
            "seconds": seconds, "peak_above_mb": stop_memory(base),
            "chunk_scores_mb": args.eval_batch * INTERESTS * min(args.chunk, args.catalogue) * 4 / 2**20,
            "dense_scores_mb": args.eval_users * INTERESTS * args.catalogue * 4 / 2**20,
            "vectors_mb": items.numel() * 4 / 2**20, "peak_mb": _peak_mb()}


PARTS = {"codebook": part_codebook, "export": part_export, "evaluate": part_evaluate}


# ---------------------------------------------------------------- the driver
def _launch(argv: list[str], processes: int, threads: int) -> list[str]:
    launcher = [sys.executable] if processes == 1 else \
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    return launcher + argv


def _part(name: str, args: argparse.Namespace, processes: int = 1, **settings) -> dict:
    """Run one part in fresh processes; every rank writes its own answer, rank 0's is returned with
    each rank's peak memory."""
    threads = max(1, args.threads // processes)
    with tempfile.TemporaryDirectory() as out:
        argv = [str(Path(__file__)), "--part", name, "--part-out", out, "--threads", str(threads),
                *(f"--{k.replace('_', '-')}={v}" for k, v in {**_shared(args), **settings}.items())]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        subprocess.run(_launch(argv, processes, threads), check=True, cwd=ROOT, env=env)
        answers = [json.loads(p.read_text()) for p in sorted(Path(out).glob("rank*.json"))]
    answer = answers[0]
    answer["peak_mb_per_process"] = [a.get("peak_mb") for a in answers]
    print(f"{name} x{processes} {settings}: {json.dumps({k: v for k, v in answer.items() if k != 'rows'})[:300]}",
          flush=True)
    return answer


def _shared(args: argparse.Namespace) -> dict:
    return {"items": args.items, "export_items": args.export_items, "eval_users": args.eval_users,
            "eval_batch": args.eval_batch}


def _train_data(args: argparse.Namespace, folder: Path) -> dict:
    """A synthetic dataset whose users hold the longest history asked for, its item-vector export
    and a codebook fitted once on it."""
    import torch

    from hymirec.codebook import CodebookConfig, ResidualCodebook
    from hymirec.codebook.synthetic import clustered_embeddings
    from hymirec.data.synthetic import generate_synthetic
    from hymirec.encoders.export import write_embeddings

    longest = max(args.history_lengths) + 30  # room for the training window and the held-out items
    dataset = generate_synthetic(n_users=args.train_users, n_items=args.train_items, n_clusters=200,
                                 mean_seq_len=longest, seq_len_sigma=0.0, min_seq_len=longest,
                                 max_seq_len=longest, repeats=True, seed=0, name="scale_sim")
    path = dataset.save(folder / "dataset")
    vectors = torch.from_numpy(clustered_embeddings(dataset.n_items, DIM, seed=1))
    export = write_embeddings(folder / "items.safetensors", torch.cat([vectors.new_zeros(1, DIM), vectors]),
                              dataset, {"synthetic": "clustered_embeddings", "seed": 1})
    book = ResidualCodebook(CodebookConfig(variant="cosine", layers=3, k=64, scale_dtype="float16")).fit(vectors.numpy())
    return {"dataset": str(path), "vectors": str(export), "codebook": str(book.save(folder / "codebook.safetensors")),
            "events": int(len(dataset.interactions))}


def _train(args: argparse.Namespace, data: dict, history: int, processes: int, out: Path) -> dict:
    threads = max(1, args.threads // processes)
    name = f"L{history}_{processes}p"
    settings = [f"data.dataset={data['dataset']}", f"data.max_len={history}", f"model.items.vectors={data['vectors']}",
                "model.items.item_ids=false", 'model.items.template="{title}"',
                f"model.history.codebook_path={data['codebook']}", "train.loss.negatives=1024",
                "train.epochs=1", "train.progress=false", f"train.threads={threads}", f"name={name}",
                "eval.batch_size=256"]
    argv = ["-m", "hymirec", "train", "--config", str(ROOT / "configs" / "hymirec_ml100k.yaml"), "--out", str(out),
            "--overwrite", *(arg for s in settings for arg in ("--set", s))]
    start = time.perf_counter()
    subprocess.run(_launch(argv, processes, threads), check=True, cwd=ROOT, stdout=subprocess.DEVNULL,
                   env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    wall = time.perf_counter() - start
    results = json.loads((out / name / "results.json").read_text())
    row = {"history": history, "processes": processes, "threads_per_process": threads, "wall_s": wall,
           "positions_per_s": results["positions_per_s"], "train_s": results["train_seconds"],
           "peak_mb": results["peak_rss_mb"]}
    print(f"train {name}: {json.dumps(row)}", flush=True)
    return row


def _paper_arithmetic(found: dict, args: argparse.Namespace) -> list[str]:
    """What the measured rates say about the paper's 11.7M items and 572k users."""
    book = next(r for r in found["codebook"] if r["processes"] == 1)
    scale = PAPER_ITEMS / args.items
    export = max(found["export"]["rows"], key=lambda r: r["items_per_s"])
    big = [r for r in found["evaluate"] if r["catalogue"] == max(args.catalogue_sizes) and r["chunk"] == args.chunks[0]][0]
    per_user_item = big["seconds"] / (big["users"] * big["catalogue"])
    events = PAPER_USERS * PAPER_HISTORY
    return [
        f"- **Codebook**: encoding {PAPER_ITEMS / 1e6:.1f}M items at the measured {book['items_per_s']:,.0f} items/s "
        f"takes {book['encode_s'] * scale / 60:.1f} min in one process (the fit reads a basepool of "
        f"{book['basepool']:,}, whatever the catalogue). Codes and scales take {book['bytes_per_item']:.0f} bytes "
        f"per item: {PAPER_ITEMS * book['bytes_per_item'] / 2**20:,.0f} MiB for the catalogue, against "
        f"{PAPER_ITEMS * DIM * 4 / 2**30:,.1f} GiB of float32 {DIM}-d vectors "
        f"({PAPER_ITEMS * 2048 * 4 / 2**30:,.0f} GiB at the paper's 2048-d).",
        f"- **Histories**: {PAPER_USERS:,} users x {PAPER_HISTORY} events = {events / 1e6:.0f}M events. Decoded to "
        f"float32 {DIM}-d vectors they would be {events * DIM * 4 / 2**30:,.0f} GiB; the store keeps item ids "
        f"({events * 4 / 2**30:.2f} GiB) and each request decodes its user's codes on the fly.",
        f"- **Item export** (MiniLM, {export['precision']}, {export['items_per_s']:.0f} items/s on this CPU): "
        f"{PAPER_ITEMS / export['items_per_s'] / 3600:.1f} h for 11.7M items in one process; `hymirec embed` under "
        "torchrun splits it over the ranks.",
        f"- **Evaluation**: {per_user_item * 1e9:.2f} ns per (user, item) pair with 2 interests here, so all "
        f"{PAPER_USERS:,} users against 11.7M items would take {per_user_item * PAPER_USERS * PAPER_ITEMS / 3600:,.0f} "
        "CPU-hours of this machine (split over ranks by `torchrun`); memory stays one chunk per user batch: "
        f"{args.eval_batch} x {INTERESTS} x {args.chunks[0]:,} float32 scores = {big['chunk_scores_mb']:.0f} MiB, "
        f"where a users x items matrix would take {PAPER_USERS * PAPER_ITEMS * 4 / 2**40:,.0f} TiB.",
    ]


def _markdown(found: dict, args: argparse.Namespace) -> str:
    lines = [f"# HyMiRec at industrial scale, simulated ({machine()})", "", f"`{command()}`", "",
             f"Synthetic catalogue of {args.items:,} clustered {DIM}-d item vectors; each part in fresh processes "
             f"({args.threads} threads shared by a part's processes). Peak memory: each process's maximum "
             "resident set.", "", "## Codebook (cosine, 3 layers x 256, float16 scales)", "",
             "| processes | fit s (basepool) | encode s | items/s | bytes/item | codes + scales MiB | float32 MiB "
             "| cosine per layer | peak MiB per process |", "|---|---|---|---|---|---|---|---|---|"]
    for r in found["codebook"]:
        lines.append(f"| {r['processes']} | {r['fit_s']:.1f} ({r['basepool']:,}) | {r['encode_s']:.1f} "
                     f"| {r['items_per_s']:,.0f} | {r['bytes_per_item']:.0f} | {r['code_bytes'] / 2**20:.1f} "
                     f"| {r['fp32_bytes'] / 2**20:,.0f} | {' / '.join(f'{c:.3f}' for c in r['cosine_per_layer'])} "
                     f"| {' / '.join(f'{m:,.0f}' for m in r['peak_mb_per_process'])} |")
    lines += ["", "## Item-vector export (all-MiniLM-L6-v2, 32 tokens, 1 process)", "",
              "| precision | items | s | items/s |", "|---|---|---|---|"]
    lines += [f"| {r['precision']} | {r['items']:,} | {r['seconds']:.1f} | {r['items_per_s']:.0f} |"
              for r in found["export"]["rows"]]
    lines += ["", f"## Stage-2 training throughput ({args.train_users} users, {args.train_items:,} items, one epoch)",
              "", "| history read (data.max_len) | processes | positions/s | speed-up | train s | peak MiB "
              "(rank 0) |", "|---|---|---|---|---|---|"]
    for r in found["train"]:
        one = next(o for o in found["train"] if o["history"] == r["history"] and o["processes"] == 1)
        lines.append(f"| {r['history']} | {r['processes']} | {r['positions_per_s']:.0f} "
                     f"| {r['positions_per_s'] / one['positions_per_s']:.2f}x | {r['train_s']:.1f} | {r['peak_mb']:,.0f} |")
    lines += ["", f"## Full-ranking evaluation ({args.eval_users:,} users, {INTERESTS} interests, user batch "
              f"{args.eval_batch}, 1 process)", "",
              "| items | item chunk | s | peak MiB above the vectors | one chunk's scores MiB "
              "| a users x items matrix MiB |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['catalogue']:,} | {r['chunk']:,} | {r['seconds']:.1f} | {r['peak_above_mb']:,.0f} "
              f"| {r['chunk_scores_mb']:,.0f} | {r['dense_scores_mb']:,.0f} |" for r in found["evaluate"]]
    lines += ["", "## The paper's industrial data (11.7M items, 572k users, histories of 241)", "",
              *_paper_arithmetic(found, args)]
    return "\n".join(lines) + "\n"


def _plot(found: dict, args: argparse.Namespace, path: Path) -> None:
    fig, axes = new_figure(1, 3, figsize=(15, 4))
    for processes in sorted({r["processes"] for r in found["train"]}):
        rows = [r for r in found["train"] if r["processes"] == processes]
        axes[0].plot([r["history"] for r in rows], [r["positions_per_s"] for r in rows], marker="o",
                     label=f"{processes} process(es)")
    axes[0].set(title="stage-2 training", xlabel="history read", ylabel="positions / s", xscale="log")
    axes[0].legend(fontsize=8)
    chunk = args.chunks[0]
    rows = [r for r in found["evaluate"] if r["chunk"] == chunk]
    axes[1].plot([r["catalogue"] for r in rows], [r["seconds"] for r in rows], marker="o")
    axes[1].set(title=f"evaluation, {args.eval_users:,} users (chunk {chunk:,})", xlabel="items", ylabel="s",
                xscale="log", yscale="log")
    rows = [r for r in found["evaluate"] if r["catalogue"] == max(args.catalogue_sizes)]
    axes[2].plot([r["chunk"] for r in rows], [r["peak_above_mb"] for r in rows], marker="o", label="measured peak")
    axes[2].plot([r["chunk"] for r in rows], [r["chunk_scores_mb"] for r in rows], ls="--", label="one chunk's scores")
    axes[2].axhline(rows[0]["dense_scores_mb"], color="grey", ls=":", label="users x items matrix")
    axes[2].set(title=f"evaluation memory, {max(args.catalogue_sizes):,} items", xlabel="item chunk",
                ylabel="MiB above the vectors", xscale="log", yscale="log")
    axes[2].legend(fontsize=8)
    save_figure(fig, path, "HyMiRec at scale, simulated")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=positive, default=1_000_000, help="catalogue of the codebook part")
    parser.add_argument("--export-items", type=positive, default=2000)
    parser.add_argument("--train-users", type=positive, default=512)
    parser.add_argument("--train-items", type=positive, default=100_000)
    parser.add_argument("--history-lengths", type=positive, nargs="+", default=[60, 240, 960])
    parser.add_argument("--processes", type=positive, nargs="+", default=[1, 2])
    parser.add_argument("--catalogue-sizes", type=positive, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--chunks", type=positive, nargs="+", default=[16_384, 4096, 65_536],
                        help="item chunks; the first is used across catalogue sizes, all at the largest")
    parser.add_argument("--eval-users", type=positive, default=1024)
    parser.add_argument("--eval-batch", type=positive, default=256)
    parser.add_argument("--threads", type=positive, default=2, help="threads shared by a part's processes")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--part", choices=sorted(PARTS), help=argparse.SUPPRESS)
    parser.add_argument("--part-out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--catalogue", type=positive, help=argparse.SUPPRESS)
    parser.add_argument("--chunk", type=positive, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part:
        import torch

        torch.set_num_threads(args.threads)
        answer = PARTS[args.part](args)
        rank = int(os.environ.get("RANK", 0))
        (args.part_out / f"rank{rank}.json").write_text(json.dumps(answer))
        return
    found = {"codebook": [_part("codebook", args, p) for p in args.processes], "export": _part("export", args)}
    found["evaluate"] = [_part("evaluate", args, catalogue=n, chunk=args.chunks[0]) for n in args.catalogue_sizes]
    found["evaluate"] += [_part("evaluate", args, catalogue=max(args.catalogue_sizes), chunk=c) for c in args.chunks[1:]]
    with tempfile.TemporaryDirectory() as folder:
        data = _train_data(args, Path(folder))
        found["train"] = [_train(args, data, history, p, Path(folder) / "runs")
                          for history in args.history_lengths for p in args.processes]
    write_results("scale_sim", {"machine": machine(), "command": command(), "args": vars(args) | {"results": str(args.results)},
                                **found}, _markdown(found, args), args.results)
    _plot(found, args, args.results / "scale_sim.png")


if __name__ == "__main__":
    main()
