"""Benchmark: the faiss HNSW candidate index against exact retrieval, on a run's catalogue.

Every user of the run is encoded as the server encodes them (whole sequence, ``[K, D]``
interests); each interest is a query. Reported: recall@k of HNSW's top-k against the exact
top-k (the share of the exact list it returns), and the median time of one query per index
(CPU, one thread), for the catalogue as it is and, with ``--copies``, for the catalogue
repeated with a little noise (a larger catalogue of the same geometry).

    .venv/bin/python benchmarks/serving_index.py --run runs/default --k 100 --copies 1 10

Writes ``<results>/serving_index.{json,md}``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from common import RESULTS, command, machine, positive, write_results

from hymirec.evaluation.inference import encode_users
from hymirec.runs.batch import whole_sequences
from hymirec.runs.restored import RestoredRun
from hymirec.serving.retrieval import CandidateIndex, ExactIndex, HNSWIndex, recall_at


def _median_ms(index: CandidateIndex, queries: torch.Tensor, k: int) -> float:
    times = []
    for query in queries[:200]:
        start = time.perf_counter()
        index.search(query[None], k)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="folder of 'hymirec run' or 'hymirec train'")
    parser.add_argument("--k", type=positive, default=100)
    parser.add_argument("--copies", type=positive, nargs="+", default=[1])
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    run = RestoredRun.load(args.run)
    users = torch.arange(1, run.split.dataset.n_users + 1).numpy()
    with run.autocast():
        queries = encode_users(run.model, whole_sequences(run, users), run.max_len, cosine=run.cosine)
    queries = queries.flatten(0, 1)
    catalogue = run.catalogue()
    generator = torch.Generator().manual_seed(0)
    rows = []
    for copies in args.copies:
        items = catalogue[1:].repeat(copies, 1)
        items = items + 0.01 * items.std() * torch.randn(items.shape, generator=generator) * (copies > 1)
        vectors = torch.cat([catalogue[:1], items])
        hnsw = HNSWIndex(vectors)
        rows.append({"items": len(items), "queries": len(queries), "k": args.k,
                     "recall": recall_at(hnsw, vectors, queries, args.k),
                     "exact_ms": _median_ms(ExactIndex(vectors), queries, args.k),
                     "hnsw_ms": _median_ms(hnsw, queries, args.k)})
        print(rows[-1], flush=True)
    lines = [f"# HNSW vs exact candidate retrieval ({machine()}, 1 thread)", "", f"`{command()}`", "",
             f"Run {run.run_dir} ({run.config.model_name}); queries: every user's interests.", "",
             f"| items | queries | recall@{args.k} | exact ms / query | HNSW ms / query |", "|---|---|---|---|---|"]
    lines += [f"| {r['items']} | {r['queries']} | {r['recall']:.4f} | {r['exact_ms']:.2f} | {r['hnsw_ms']:.2f} |"
              for r in rows]
    write_results("serving_index", {"machine": machine(), "command": command(), "run": str(run.run_dir),
                                    "rows": rows}, "\n".join(lines) + "\n", args.results)


if __name__ == "__main__":
    main()
