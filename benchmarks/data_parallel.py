"""Benchmark: the same run in one process and data-parallel under torchrun (gloo), on MovieLens-100K.

For each model (``--models``: SASRec's preset, and HyMiRec as Table 2 reports it, each also with
its dropout off) the run is trained for ``--epochs`` epochs with the same seed and global batch by
``hymirec train`` in one process with ``--threads`` intra-op threads, and by ``torchrun
--nproc_per_node=N -m hymirec train`` for each N of ``--processes`` (each process gets ``--threads
/ N`` threads, so every variant uses the same cores); one more single-process run with
``--spread-seed`` shows what another seed alone changes. Reported: validation N@10 per epoch, the
test N@10 (history masked) of the best epoch, the relative gap to one process of the main seed,
training positions per second and the wall time. With ``--kill-after K`` one more run per model is
killed (SIGKILL to every process) under the largest N during epoch K + 1, then resumed from its
last checkpoint in one process (``--resume``) and trained to the end. What two processes cannot repeat bit for bit:
dropout masks and sampled negatives come from per-rank streams, and float sums (the gradient
all-reduce) run in another order; with dropout off (and these models' full-softmax losses) only
the order of float sums is left.

    .venv/bin/python benchmarks/data_parallel.py                      # SASRec and HyMiRec, 3 epochs
    .venv/bin/python benchmarks/data_parallel.py --models sasrec --epochs 1 --results /tmp/out

Writes ``<results>/data_parallel.{json,md,png}``. Run it alone on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil  # installed with accelerate
from common import RESULTS, ROOT, command, machine, new_figure, positive, save_figure, write_results
from table2_ml100k import IDENTITY_HEAD
from variants import config_path

from hymirec.training.trainer import LAST, METRICS, read_history

# model -> (config, overrides): SASRec's preset; HyMiRec as its Table 2 row trains it; each with
# its dropout off (the only per-rank randomness these two train with).
MODELS = {"sasrec": ("sasrec", []), "sasrec-nodropout": ("sasrec", ["model.dropout=0", "model.attention_dropout=0"]),
          "hymirec": ("hymirec", IDENTITY_HEAD), "hymirec-nodropout": ("hymirec", [*IDENTITY_HEAD, "model.lightweight.dropout=0"])}
METRIC = "ndcg@10"


def _launch(command: list[str], env: dict, run_dir: Path, kill_after: int | None) -> None:
    """Run ``command`` to its end, or SIGKILL it and every process under it (torchrun starts its
    workers in sessions of their own) once epoch ``kill_after``'s checkpoint is written, halfway
    through the next epoch's training."""
    if kill_after is None:
        subprocess.run(command, check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        return
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    metrics, last = run_dir / METRICS, run_dir / LAST
    # The trainer writes an epoch's metrics line, then its last checkpoint.
    while not (metrics.exists() and len(metrics.read_text().splitlines()) >= kill_after
               and last.exists() and last.stat().st_mtime >= metrics.stat().st_mtime):
        if process.poll() is not None:
            raise RuntimeError(f"{run_dir.name} ended (exit {process.returncode}) before it could be killed")
        time.sleep(0.1)
    time.sleep(read_history(run_dir)[-1]["train_seconds"] / 2)
    if process.poll() is not None:
        raise RuntimeError(f"{run_dir.name} ended before it could be killed; lower --kill-after")
    parent = psutil.Process(process.pid)
    for p in [*parent.children(recursive=True), parent]:
        p.kill()
    process.wait()


def _train(model: str, processes: int, seed: int, args: argparse.Namespace, out: Path,
           resumed_in: int | None = None) -> dict:
    """Train one variant; with ``resumed_in``, kill it after ``args.kill_after`` epochs and resume it
    in that many processes."""
    config, overrides = MODELS[model]
    name = f"{model}_{processes}p_{seed}" + (f"_resumed{resumed_in}p" if resumed_in else "")
    start = time.perf_counter()
    # (world size, epochs after which it is killed): the run, then its resumption if any.
    worlds = [(processes, args.kill_after), (resumed_in, None)] if resumed_in else [(processes, None)]
    for i, (world, kill_after) in enumerate(worlds):
        threads = max(1, args.threads // world)
        settings = [*overrides, f"name={name}", f"train.seed={seed}", f"train.epochs={args.epochs}",
                    f"train.patience={args.epochs}", "train.progress=false", f"train.threads={threads}"]
        train = ["-m", "hymirec", "train", "--config", str(config_path(config)), "--out", str(out),
                 "--resume" if i else "--overwrite", *(arg for s in settings for arg in ("--set", s))]
        launcher = [sys.executable] if world == 1 else \
            [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={world}"]
        _launch([*launcher, *train], {**os.environ, "OMP_NUM_THREADS": str(threads)}, out / name, kill_after)
    wall = time.perf_counter() - start
    results = json.loads((out / name / "results.json").read_text())
    history = read_history(out / name)
    row = {"model": model, "processes": processes, "resumed_in": resumed_in, "seed": seed,
           "threads_per_process": max(1, args.threads // processes), "wall_seconds": wall,
           "valid_per_epoch": [r["valid"][METRIC] for r in history], "loss_per_epoch": [r["loss"] for r in history],
           "valid": results["valid"][METRIC], "test_masked": results["test_masked"][METRIC],
           "best_epoch": results["best_epoch"], "positions_per_s": results["positions_per_s"],
           "train_seconds": results["train_seconds"]}
    print(f"{name}: valid {row['valid']:.4f} test {row['test_masked']:.4f} "
          f"{row['positions_per_s']:.0f} positions/s, {wall:.0f} s", flush=True)
    return row


def _gap(value: float, reference: float) -> str:
    return f"{100 * (value / reference - 1):+.2f}%"


def _markdown(rows: list[dict], args: argparse.Namespace) -> str:
    lines = [f"# Data-parallel training vs one process ({machine()})", "", f"`{command()}`", "",
             f"MovieLens-100K, seed {args.seed}, {args.epochs} epochs, the same global batch; N processes "
             f"(torchrun, gloo) with {args.threads} // N threads each. Validation N@10 per epoch; test N@10 "
             f"(history masked) at the best epoch; gap: relative to one process with seed {args.seed} (the "
             f"row with seed {args.spread_seed} is what another seed alone changes).", "",
             "| model | processes | seed | valid N@10 per epoch | valid gap | test N@10 | test gap | loss per epoch "
             "| positions/s | speed-up | wall s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        one = next(o for o in rows if o["model"] == r["model"] and o["processes"] == 1 and o["seed"] == args.seed
                   and not o.get("resumed_in"))
        processes = (f"{r['processes']}, killed in epoch {args.kill_after + 1}, resumed in {r['resumed_in']}"
                     if r.get("resumed_in") else r["processes"])
        lines.append(f"| {r['model']} | {processes} | {r['seed']} | {' / '.join(f'{v:.4f}' for v in r['valid_per_epoch'])} "
                     f"| {_gap(r['valid'], one['valid'])} | {r['test_masked']:.4f} "
                     f"| {_gap(r['test_masked'], one['test_masked'])} "
                     f"| {' / '.join(f'{v:.4f}' for v in r['loss_per_epoch'])} | {r['positions_per_s']:.0f} "
                     f"| {r['positions_per_s'] / one['positions_per_s']:.2f}x | {r['wall_seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def _plot(rows: list[dict], path: Path) -> None:
    models = list(dict.fromkeys(r["model"] for r in rows))
    fig, axes = new_figure(1, len(models), figsize=(5 * len(models), 3.5), squeeze=False)
    for ax, model in zip(axes[0], models):
        for r in (r for r in rows if r["model"] == model):
            epochs = range(1, len(r["valid_per_epoch"]) + 1)
            resumed = f", resumed in {r['resumed_in']}" if r.get("resumed_in") else ""
            ax.plot(epochs, r["valid_per_epoch"], marker="o", label=f"{r['processes']} process(es){resumed}, seed {r['seed']}")
        ax.set(title=model, xlabel="epoch", ylabel="valid N@10")
        ax.legend(fontsize=8)
    save_figure(fig, path, "one process vs data-parallel, same global batch and seed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=list(MODELS))
    parser.add_argument("--processes", type=positive, nargs="+", default=[2],
                        help="world sizes compared with one process")
    parser.add_argument("--epochs", type=positive, default=3)
    parser.add_argument("--threads", type=positive, default=2, help="threads shared by a run's processes")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--spread-seed", type=int, default=43, help="one more single-process run with this seed")
    parser.add_argument("--kill-after", type=int, default=1,
                        help="epochs after which one more run per model is killed and resumed in one process "
                             "(0: no such run)")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not 0 <= args.kill_after < args.epochs:
        parser.error(f"--kill-after must be in [0, --epochs), got {args.kill_after}")
    rows = []
    with tempfile.TemporaryDirectory() as out:
        for model in args.models:
            for processes in [1, *(p for p in args.processes if p != 1)]:
                rows.append(_train(model, processes, args.seed, args, Path(out)))
            rows.append(_train(model, 1, args.spread_seed, args, Path(out)))
            if args.kill_after:
                rows.append(_train(model, max(args.processes), args.seed, args, Path(out), resumed_in=1))
    write_results("data_parallel", {"machine": machine(), "command": command(), "rows": rows},
                  _markdown(rows, args), args.results)
    _plot(rows, args.results / "data_parallel.png")


if __name__ == "__main__":
    main()
