"""Benchmark: ``hymirec serve`` under a bounded load on loopback, latency vs history length.

For each served run (``--run NAME=DIR``, e.g. HyMiRec, HLLM and SASRec run folders, all served
the same way: a real ``hymirec serve`` process with a fresh SQLite store) and each history length
(``--lengths``, default 100 / 1,000 / 10,000 items), ``--users`` users are given that many events
(items drawn, seeded, from the run's catalogue) through ``POST /users/{id}/events``. Then:

- **cache miss**: each user's first ``GET /users/{id}/recommendations`` (for HyMiRec it computes
  the coarse-interest summary; for the other models every request is the same);
- **cached load**: ``--requests`` requests spread over those users by ``--concurrency`` client
  threads (a closed loop: each thread sends its next request when the last one is answered),
  k = ``--k``.

Reported per model and length: p50 / p99 latency of the cached load and of the misses,
requests/s, errors (any non-200), bytes read from the store per request (the server's own
count, in each response), and the summary hit rate. The plot: p50 and p99 latency vs history
length, one line per model. Run it alone on the machine; it quotes the machine.

    .venv/bin/python benchmarks/serving_load.py --run hymirec=runs/default/stage2 --run sasrec=runs/sasrec
    .venv/bin/python benchmarks/serving_load.py --run tiny=/tmp/run --lengths 10 20 --users 2 --requests 20 \\
        --results /tmp/out     # a smoke run

Writes ``<results>/serving_load.{json,md,png}``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from common import RESULTS, command, machine, new_figure, positive, save_figure, write_results

from hymirec.data.fetch import load_dataset
from hymirec.runs.restored import run_folder
from hymirec.serving.process import ServerProcess
from hymirec.training.config import load_experiment

BATCH = 1000  # events per POST (the server's default limit)


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def _fill(client: httpx.Client, user: str, items: np.ndarray) -> None:
    for lo in range(0, len(items), BATCH):
        events = [{"event_id": str(lo + i), "item": str(item)} for i, item in enumerate(items[lo: lo + BATCH])]
        client.post(f"/users/{user}/events", json={"events": events}).raise_for_status()


def _get(client: httpx.Client, user: str, k: int) -> tuple[float, httpx.Response]:
    start = time.perf_counter()
    response = client.get(f"/users/{user}/recommendations", params={"k": k})
    return time.perf_counter() - start, response


def _load(url: str, users: list[str], requests: int, concurrency: int, k: int) -> dict:
    """``requests`` GETs over ``users`` from ``concurrency`` closed-loop threads."""
    latencies: list[float] = []
    answers: list[dict] = []
    errors = [0]
    lock = threading.Lock()
    counter = iter(range(requests))

    def worker() -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            for n in counter:  # shared iterator: the threads together send exactly `requests`
                seconds, response = _get(client, users[n % len(users)], k)
                with lock:
                    latencies.append(seconds)
                    if response.status_code == 200:
                        answers.append(response.json())
                    else:
                        errors[0] += 1

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    hits = sum(a["summary"] == "hit" for a in answers)
    summarised = sum(a["summary"] != "none" for a in answers)
    return {"p50_ms": 1e3 * _percentile(latencies, 50), "p99_ms": 1e3 * _percentile(latencies, 99),
            "requests_per_s": len(latencies) / wall, "errors": errors[0],
            "bytes_read_mean": statistics.fmean(a["bytes_read"] for a in answers) if answers else float("nan"),
            "bytes_read_max": max((a["bytes_read"] for a in answers), default=0),
            "hit_rate": hits / summarised if summarised else None}


def _measure(name: str, run: Path, args: argparse.Namespace, folder: Path, log) -> list[dict]:
    config = load_experiment(run / "config.yaml")
    raw_items = load_dataset(config.data.dataset, config.data.data_dir).items["raw_id"].astype(str).to_numpy()
    rng = np.random.default_rng(args.seed)
    rows = []
    options = ["--no-import", "--refresh-events", str(10**9)]
    with ServerProcess(run, folder / f"{name}.sqlite", log, options) as server, \
            httpx.Client(base_url=server.url, timeout=120) as client:
        for length in args.lengths:
            users = [f"{name}-{length}-{u}" for u in range(args.users)]
            for user in users:
                _fill(client, user, rng.choice(raw_items, length))
            misses = []
            for user in users:
                seconds, response = _get(client, user, args.k)
                response.raise_for_status()
                misses.append(seconds)
            row = {"model": name, "model_name": config.model_name, "history": length,
                   "miss_p50_ms": 1e3 * _percentile(misses, 50), "miss_p99_ms": 1e3 * _percentile(misses, 99),
                   **_load(server.url, users, args.requests, args.concurrency, args.k)}
            print(f"{name} L={length}: p50 {row['p50_ms']:.1f} ms, p99 {row['p99_ms']:.1f} ms, "
                  f"{row['requests_per_s']:.1f} req/s, {row['errors']} errors", flush=True)
            rows.append(row)
    return rows


def _markdown(rows: list[dict], args: argparse.Namespace) -> str:
    lines = [f"# Serving load ({machine()})", "", f"`{command()}`", "",
             f"k = {args.k}, {args.users} users per length, {args.requests} requests per point from "
             f"{args.concurrency} closed-loop client threads; latency measured at the client on loopback.", "",
             "| model | history | p50 ms | p99 ms | req/s | errors | bytes read / req (mean, max) | hit rate "
             "| miss p50 ms | miss p99 ms |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        hit = "-" if r["hit_rate"] is None else f"{r['hit_rate']:.2f}"
        lines.append(f"| {r['model']} ({r['model_name']}) | {r['history']} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} "
                     f"| {r['requests_per_s']:.1f} | {r['errors']} | {r['bytes_read_mean']:.0f}, {r['bytes_read_max']} "
                     f"| {hit} | {r['miss_p50_ms']:.1f} | {r['miss_p99_ms']:.1f} |")
    return "\n".join(lines) + "\n"


def _plot(rows: list[dict], path: Path) -> None:
    fig, ax = new_figure(figsize=(6, 4))
    for model in dict.fromkeys(r["model"] for r in rows):
        points = [r for r in rows if r["model"] == model]
        lengths = [r["history"] for r in points]
        line = ax.plot(lengths, [r["p50_ms"] for r in points], marker="o", label=f"{model} p50")[0]
        ax.plot(lengths, [r["p99_ms"] for r in points], marker="x", linestyle="--", color=line.get_color(),
                label=f"{model} p99")
    ax.set(xscale="log", yscale="log", xlabel="history length (items)", ylabel="latency (ms)")
    ax.legend(fontsize=8)
    save_figure(fig, path, "GET /recommendations latency vs history length")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", action="append", required=True, metavar="NAME=DIR",
                        help="a run folder to serve, under a name (repeatable)")
    parser.add_argument("--lengths", type=positive, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--users", type=positive, default=8, help="users per history length")
    parser.add_argument("--requests", type=positive, default=500, help="requests per model and length")
    parser.add_argument("--concurrency", type=positive, default=4, help="client threads")
    parser.add_argument("--k", type=positive, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    runs = {}
    for spec in args.run:
        name, _, folder = spec.partition("=")
        if not name or not folder:
            parser.error(f"--run must be NAME=DIR, got {spec!r}")
        runs[name] = run_folder(Path(folder))
    rows = []
    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "servers.log", "w") as log:
        for name, run in runs.items():
            rows += _measure(name, run, args, Path(tmp), log)
    write_results("serving_load", {"machine": machine(), "command": command(), "rows": rows},
                  _markdown(rows, args), args.results)
    _plot(rows, args.results / "serving_load.png")


if __name__ == "__main__":
    main()
