"""Benchmark: cost of one training step's loss (forward + backward) against catalogue size.

Full softmax scores every position against every item (``[P, N]``); sampled softmax against
``num_negatives`` items per position (``[P, m, D]`` gathered) or shared by the batch (``[P, m]``).
The ratio full / sampled per-position, measured in one run on one machine, is what the ``auto``
loss's catalogue threshold (``hymirec.training.losses.FULL_SOFTMAX_MAX_ITEMS``) rests on.
P = 3,200 positions (a batch of 32 sequences of 100 items, MovieLens-100K's average), D = 50.

    .venv/bin/python benchmarks/loss_cost.py [--items 1682 10000 50000 100000] [--repeats 5]

Writes ``benchmarks/results/loss_cost.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from common import command, machine, write_results

from hymirec.models.layers import lookup
from hymirec.training.losses import build_loss

LOSSES = {
    "full_softmax": {"name": "full_softmax"},
    "sampled per-position 128": {"name": "sampled_softmax", "num_negatives": 128},
    "sampled shared 128": {"name": "sampled_softmax", "num_negatives": 128, "per_position": False},
}


def step_seconds(settings: dict, n_items: int, positions: int, dim: int, repeats: int) -> float:
    """Median seconds of loss forward + backward (gradients into queries and the item table)."""
    loss = build_loss(settings, n_items)
    table = torch.randn(n_items + 1, dim, requires_grad=True)
    queries = torch.randn(positions, dim, requires_grad=True)
    positives = torch.randint(1, n_items + 1, (positions,))
    generator = torch.Generator().manual_seed(0)
    times = []
    for i in range(repeats + 1):
        start = time.perf_counter()
        loss(queries, positives, lambda ids: lookup(table, ids), generator).backward()
        if i:  # the first call warms up allocations
            times.append(time.perf_counter() - start)
        table.grad = queries.grad = None
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", nargs="+", type=int, default=[1682, 10_000, 50_000, 100_000])
    parser.add_argument("--positions", type=int, default=3200)
    parser.add_argument("--dim", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows = []
    for n in args.items:
        row = {"n_items": n, **{name: step_seconds(s, n, args.positions, args.dim, args.repeats)
                                for name, s in LOSSES.items()}}
        print(json.dumps(row), flush=True)
        rows.append(row)
    meta = {"machine": f"{machine()}, torch {torch.__version__}", "threads": torch.get_num_threads(),
            "positions": args.positions, "dim": args.dim, "command": command()}
    lines = ["## Loss cost per step (forward + backward, median ms)", "",
             f"Machine: {meta['machine']}, {meta['threads']} threads; P = {args.positions} positions, D = {args.dim}. "
             f"Command: `{meta['command']}`.", "",
             "| items | " + " | ".join(LOSSES) + " | full / per-position |", "|---" * (len(LOSSES) + 2) + "|"]
    for r in rows:
        cells = " | ".join(f"{1000 * r[name]:.1f}" for name in LOSSES)
        lines.append(f"| {r['n_items']:,} | {cells} | {r['full_softmax'] / r['sampled per-position 128']:.1f}x |")
    write_results("loss_cost", {"meta": meta, "rows": rows}, "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
