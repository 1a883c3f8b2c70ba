"""Benchmark: how training slows down when two trainings share the machine's cores.

Each case trains a model for a few epochs (plus its test evaluation) through ``hymirec train`` in
separate processes, once alone and then as two identical processes started together, and
reports each process's wall time and its ratio to the solo time of the same settings. Cases:

* ``passive (CLI default)`` -- what a user gets: the CLI's passive OpenMP waiting, one thread per
  core;
* ``OpenMP default (spin 300k)`` -- libgomp's own default, idle threads spin 300,000 iterations
  before sleeping (what a PyTorch program gets without the CLI);
* ``spin 10k`` -- a short spin before sleeping;
* ``threads=1`` -- ``train.threads=1`` in each process.

Run it alone on the machine (anything beside it skews every number):

    .venv/bin/python benchmarks/contention.py [--models sasrec gru4rec] [--epochs 3]

Writes ``benchmarks/results/contention.{json,md}``.
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

from common import ROOT, command, machine, write_results

CONFIGS = {"sasrec": "configs/quick/sasrec_ml100k.yaml", "gru4rec": "configs/gru4rec_ml100k.yaml",
           "hstu": "configs/hstu_ml100k.yaml"}
# GOMP_SPINCOUNT is how long (in spin iterations) an idle OpenMP thread spins before it sleeps:
# 300,000 is libgomp's own default when no wait policy is set, 0 under the CLI's PASSIVE.
CASES = {
    "passive (CLI default)": ({}, []),
    "OpenMP default (spin 300k)": ({"OMP_WAIT_POLICY": "ACTIVE", "GOMP_SPINCOUNT": "300000"}, []),
    "spin 10k": ({"GOMP_SPINCOUNT": "10000"}, []),
    "threads=1": ({}, ["train.threads=1"]),
}


def launch(model: str, epochs: int, env: dict, overrides: list[str], out: Path, tag: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "hymirec", "train", "--config", str(ROOT / CONFIGS[model]), "--out", str(out),
           "--overwrite", "--set", f"name={tag}", "--set", f"train.epochs={epochs}", "--set", "train.patience=1000",
           "--set", "train.progress=false"]
    for item in overrides:
        cmd += ["--set", item]
    return subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def timed(procs: list[subprocess.Popen]) -> list[float]:
    """Wall seconds of each process, all started at once."""
    start, ends = time.perf_counter(), {}
    while len(ends) < len(procs):
        for i, p in enumerate(procs):
            if i not in ends and p.poll() is not None:
                if p.returncode:
                    raise RuntimeError(f"training exited with {p.returncode}: {p.args}")
                ends[i] = time.perf_counter() - start
        time.sleep(0.05)
    return [ends[i] for i in range(len(procs))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["sasrec", "gru4rec"], choices=sorted(CONFIGS))
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args()
    # A user-exported policy would silently turn the cases into other ones.
    os.environ.pop("OMP_WAIT_POLICY", None)
    os.environ.pop("GOMP_SPINCOUNT", None)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            for case, (env, overrides) in CASES.items():
                solo = timed([launch(model, args.epochs, env, overrides, Path(tmp), "solo")])[0]
                pair = timed([launch(model, args.epochs, env, overrides, Path(tmp), f"pair{i}") for i in (1, 2)])
                row = {"model": model, "case": case, "solo_s": solo, "pair_s": pair,
                       "ratio": [p / solo for p in pair], "load_average_after": os.getloadavg()}
                print(json.dumps(row), flush=True)
                rows.append(row)
    meta = {"machine": machine(), "epochs": args.epochs, "command": command()}
    fastest_solo = {m: min(r["solo_s"] for r in rows if r["model"] == m) for m in args.models}
    lines = ["## Two trainings at once on the same cores", "",
             f"Machine: {meta['machine']}. Each run: {args.epochs} epochs + test evaluation through `hymirec train`. "
             f"Command: `{meta['command']}`.", "",
             "| model | case | solo wall s | pair wall s (each) | pair / solo of the same case | pair / fastest solo |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        vs_default = ", ".join(f"{p / fastest_solo[r['model']]:.2f}x" for p in r["pair_s"])
        lines.append(f"| {r['model']} | {r['case']} | {r['solo_s']:.1f} | {', '.join(f'{p:.1f}' for p in r['pair_s'])} "
                     f"| {', '.join(f'{x:.2f}x' for x in r['ratio'])} | {vs_default} |")
    write_results("contention", {"meta": meta, "rows": rows}, "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
