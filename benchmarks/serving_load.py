"""Benchmark: ``hymirec serve`` under a bounded load on loopback, latency vs history length.

For each served run (``--run NAME=DIR``, e.g. HyMiRec, HLLM and SASRec run folders, all served
the same way: a real ``hymirec serve`` process with a fresh SQLite store) and each history length
(``--lengths``, default 100 / 1,000 / 10,000 items), ``--users`` users are given that many events
(items drawn, seeded, from the run's catalogue) through ``POST /users/{id}/events``. Then:

- **cache miss**: each user's first ``GET /users/{id}/recommendations`` (for HyMiRec it computes
  the coarse-interest summary; for the other models every request is the same);
- **paced load**: ``--requests`` requests spread over those users, arriving as a Poisson process
  at ``--rate`` per second (an open loop: latency at that throughput, counted from each request's
  due time);
- **saturated load**: ``--requests`` more from ``--concurrency`` client threads in a closed loop
  (each sends its next request when the last is answered): the server's throughput.

A user's events are drawn from a pool of ``--pools`` distinct items of their own (0: the whole
catalogue), so that history length and the share of the catalogue seen can be told apart.
Reported per model, pool and length: p50 / p99 latency of the paced load, of the saturated load
and of the misses, requests/s, errors (any non-200), bytes read from the store per request (the
server's own count, in each response), the fewest items returned, and the summary hit rate. The
plot: p50 and p99 latency vs history length, one line per model, one panel per pool. Run it
alone on the machine; it quotes the machine.

    .venv/bin/python benchmarks/serving_load.py --run hymirec=runs/default/stage2 --run sasrec=runs/sasrec
    .venv/bin/python benchmarks/serving_load.py --run tiny=/tmp/run --lengths 10 20 --pools 5 --users 2 --requests 20 \\
        --results /tmp/out     # a smoke run

Writes ``<results>/serving_load.{json,md,png}``.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
from common import RESULTS, command, machine, new_figure, positive, save_figure, write_results

from hymirec.data.fetch import load_dataset
from hymirec.runs.restored import run_folder
from hymirec.serving.process import ServerProcess
from hymirec.training.config import load_experiment

BATCH = 1000  # events per POST (the server's default limit)
OPEN_LOOP_THREADS = 16  # enough that a request rarely waits for a client thread


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def _history(rng: np.random.Generator, raw_items: np.ndarray, length: int, pool: int) -> np.ndarray:
    """``length`` events drawn from a pool of ``pool`` distinct items of the user's own (0: from
    the whole catalogue). A pool keeps the share of the catalogue a user has seen the same at
    every length, so what changes between lengths is the history alone; uniform draws of 10,000
    events over MovieLens-100K's 1,682 items leave about 4 items unseen."""
    if pool:
        raw_items = rng.choice(raw_items, min(pool, len(raw_items)), replace=False)
    return rng.choice(raw_items, length)


def _fill(client: httpx.Client, user: str, items: np.ndarray) -> None:
    for lo in range(0, len(items), BATCH):
        events = [{"event_id": str(lo + i), "item": str(item)} for i, item in enumerate(items[lo: lo + BATCH])]
        client.post(f"/users/{user}/events", json={"events": events}).raise_for_status()


def _get(client: httpx.Client, user: str, k: int) -> tuple[float, httpx.Response]:
    start = time.perf_counter()
    response = client.get(f"/users/{user}/recommendations", params={"k": k})
    return time.perf_counter() - start, response


class _Tally:
    """Latencies and answers of one load phase, from any number of client threads."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.answers: list[dict] = []
        self.errors = 0
        self.lock = threading.Lock()

    def add(self, seconds: float, response: httpx.Response) -> None:
        with self.lock:
            self.latencies.append(seconds)
            if response.status_code == 200:
                self.answers.append(response.json())
            else:
                self.errors += 1

    def summary(self, wall: float, prefix: str) -> dict:
        return {f"{prefix}p50_ms": 1e3 * _percentile(self.latencies, 50),
                f"{prefix}p99_ms": 1e3 * _percentile(self.latencies, 99),
                f"{prefix}requests_per_s": len(self.latencies) / wall, f"{prefix}errors": self.errors}


@contextlib.contextmanager
def _clients(url: str, count: int) -> Iterator[list[httpx.Client]]:
    """``count`` HTTP clients, each connected (one ``/healthz``) before any timing starts: a
    client's making and first connection cost tens of milliseconds, which are not the server's."""
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(httpx.Client(base_url=url, timeout=60)) for _ in range(count)]
        for client in clients:
            client.get("/healthz").raise_for_status()
        yield clients


def _threads(clients: list[httpx.Client], work: Callable[[httpx.Client], None]) -> float:
    """Run ``work`` on a thread per client; the wall time."""
    threads = [threading.Thread(target=work, args=(client,)) for client in clients]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


def _closed_loop(url: str, users: list[str], requests: int, concurrency: int, k: int) -> tuple[_Tally, float]:
    """``requests`` GETs over ``users`` from ``concurrency`` closed-loop threads (each sends its
    next request when the last is answered): the server saturated, its throughput."""
    tally, counter = _Tally(), iter(range(requests))

    def worker(client: httpx.Client) -> None:
        for n in counter:  # shared iterator: the threads together send exactly `requests`
            tally.add(*_get(client, users[n % len(users)], k))

    with _clients(url, concurrency) as clients:
        return tally, _threads(clients, worker)


def _open_loop(url: str, users: list[str], requests: int, rate: float, k: int,
               rng: np.random.Generator) -> tuple[_Tally, float]:
    """``requests`` GETs arriving as a Poisson process at ``rate`` per second, whatever the
    server's pace. Latency counts from each request's due time, so a request that waits for a
    free client thread counts its wait (no coordinated omission)."""
    due = np.cumsum(rng.exponential(1 / rate, requests))
    tally, counter = _Tally(), iter(range(requests))

    def worker(client: httpx.Client) -> None:
        for n in counter:
            time.sleep(max(0.0, start + due[n] - time.perf_counter()))
            _, response = _get(client, users[n % len(users)], k)
            tally.add(time.perf_counter() - start - due[n], response)

    with _clients(url, OPEN_LOOP_THREADS) as clients:
        start = time.perf_counter()
        return tally, _threads(clients, worker)


def _load(url: str, users: list[str], args: argparse.Namespace, rng: np.random.Generator) -> dict:
    """The open loop at ``--rate`` (latency at that throughput), then the closed loop
    (saturation throughput); bytes read and the summary hit rate over both."""
    paced, paced_wall = _open_loop(url, users, args.requests, args.rate, args.k, rng)
    saturated, saturated_wall = _closed_loop(url, users, args.requests, args.concurrency, args.k)
    answers = paced.answers + saturated.answers
    hits = sum(a["summary"] == "hit" for a in answers)
    summarised = sum(a["summary"] != "none" for a in answers)
    return {**paced.summary(paced_wall, ""), **saturated.summary(saturated_wall, "saturated_"),
            "bytes_read_mean": statistics.fmean(a["bytes_read"] for a in answers) if answers else float("nan"),
            "bytes_read_max": max((a["bytes_read"] for a in answers), default=0),
            "returned_min": min((len(a["items"]) for a in answers), default=0),
            "hit_rate": hits / summarised if summarised else None}


def _measure(name: str, run: Path, args: argparse.Namespace, folder: Path, log) -> list[dict]:
    config = load_experiment(run / "config.yaml")
    raw_items = load_dataset(config.data.dataset, config.data.data_dir).items["raw_id"].astype(str).to_numpy()
    rng = np.random.default_rng(args.seed)
    rows = []
    options = ["--no-import", "--refresh-events", str(10**9)]
    with ServerProcess(run, folder / f"{name}.sqlite", log, options) as server, \
            httpx.Client(base_url=server.url, timeout=120) as client:
        for pool in args.pools:
            for length in args.lengths:
                users = [f"{name}-{pool}-{length}-{u}" for u in range(args.users)]
                for user in users:
                    _fill(client, user, _history(rng, raw_items, length, pool))
                misses = []
                for user in users:
                    seconds, response = _get(client, user, args.k)
                    response.raise_for_status()
                    misses.append(seconds)
                row = {"model": name, "model_name": config.model_name, "pool": pool, "history": length,
                       "miss_p50_ms": 1e3 * _percentile(misses, 50), "miss_p99_ms": 1e3 * _percentile(misses, 99),
                       **_load(server.url, users, args, rng)}
                print(f"{name} pool={pool} L={length}: p50 {row['p50_ms']:.1f} ms, p99 {row['p99_ms']:.1f} ms "
                      f"at {row['requests_per_s']:.1f} req/s; saturated {row['saturated_requests_per_s']:.1f} "
                      f"req/s; {row['errors'] + row['saturated_errors']} errors; "
                      f"{row['bytes_read_max']} bytes max", flush=True)
                rows.append(row)
    return rows


def _pool_name(pool: int) -> str:
    return f"{pool} items" if pool else "catalogue"


def _markdown(rows: list[dict], args: argparse.Namespace) -> str:
    lines = [f"# Serving load ({machine()})", "", f"`{command()}`", "",
             f"k = {args.k}, {args.users} users per point. Each point: {args.requests} requests arriving at "
             f"{args.rate:g}/s (Poisson; latency from each request's due time), then {args.requests} from "
             f"{args.concurrency} closed-loop client threads (saturated: the server's throughput). Latency is "
             "measured at the client on loopback; client and server share the machine's cores. A user's "
             "events are drawn from a pool of that many distinct items of their own, or from the whole "
             "catalogue.", "",
             "| model | drawn from | history | p50 ms | p99 ms | req/s | saturated req/s | saturated p99 ms "
             "| errors | bytes read / req (mean, max) | items returned (min) | hit rate | miss p50 ms | miss p99 ms |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        hit = "-" if r["hit_rate"] is None else f"{r['hit_rate']:.2f}"
        lines.append(f"| {r['model']} ({r['model_name']}) | {_pool_name(r['pool'])} | {r['history']} "
                     f"| {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['requests_per_s']:.1f} "
                     f"| {r['saturated_requests_per_s']:.1f} | {r['saturated_p99_ms']:.1f} "
                     f"| {r['errors'] + r['saturated_errors']} | {r['bytes_read_mean']:.0f}, {r['bytes_read_max']} "
                     f"| {r['returned_min']} | {hit} | {r['miss_p50_ms']:.1f} | {r['miss_p99_ms']:.1f} |")
    return "\n".join(lines) + "\n"


def _plot(rows: list[dict], path: Path) -> None:
    pools = list(dict.fromkeys(r["pool"] for r in rows))
    fig, axes = new_figure(1, len(pools), figsize=(6 * len(pools), 4), squeeze=False)
    for ax, pool in zip(axes[0], pools):
        for model in dict.fromkeys(r["model"] for r in rows):
            points = [r for r in rows if r["model"] == model and r["pool"] == pool]
            lengths = [r["history"] for r in points]
            line = ax.plot(lengths, [r["p50_ms"] for r in points], marker="o", label=f"{model} p50")[0]
            ax.plot(lengths, [r["p99_ms"] for r in points], marker="x", linestyle="--", color=line.get_color(),
                    label=f"{model} p99")
        ax.set(xscale="log", yscale="log", xlabel="history length (events)", ylabel="latency (ms)",
               title=f"events drawn from: {_pool_name(pool)}")
        ax.legend(fontsize=8)
    save_figure(fig, path, "GET /recommendations latency vs history length")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", action="append", required=True, metavar="NAME=DIR",
                        help="a run folder to serve, under a name (repeatable)")
    parser.add_argument("--lengths", type=positive, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--users", type=positive, default=8, help="users per history length")
    parser.add_argument("--requests", type=positive, default=500, help="requests per model and length")
    parser.add_argument("--rate", type=positive, default=30, help="arrivals per second of the paced phase")
    parser.add_argument("--concurrency", type=positive, default=4, help="client threads of the saturated phase")
    parser.add_argument("--pools", type=int, nargs="+", default=[100, 0],
                        help="distinct items each user's events are drawn from (0: the whole catalogue)")
    parser.add_argument("--k", type=positive, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    if min(args.pools) < 0:
        parser.error(f"--pools must be >= 0, got {min(args.pools)}")
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
