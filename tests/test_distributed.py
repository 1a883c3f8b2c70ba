"""Data-parallel training and evaluation under torchrun (gloo, 2 CPU processes) against one
process: same global batch and seed, the same training and exactly the same evaluation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from helpers import make_dataset
from test_pipeline import OUTPUTS, STAGE_NAMES, _pipeline

from hymirec.config import ConfigError
from hymirec.distributed import World, join_world
from hymirec.runs.restored import evaluate_run
from hymirec.training.config import load_experiment
from hymirec.training.trainer import join_training_world

TESTS = Path(__file__).parent
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _torchrun(*args: str, processes: int = 2, env: dict | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}", *args]
    done = subprocess.run(command, env={**ENV, **(env or {})}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def _hymirec(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "hymirec", *args], env={**ENV, **(env or {})}, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    """31 users (a global batch of 10 leaves one row for the last batch: a rank without a row)."""
    rng = np.random.default_rng(0)
    rows = [(u, int(i), t) for u in range(1, 32) for t, i in enumerate(rng.integers(1, 21, 8))]
    return make_dataset(rows, n_items=20).save(tmp_path_factory.mktemp("toy") / "toy")


def _settings(toy: Path, out: Path, name: str, epochs: int) -> list[str]:
    # Dropout off and the full softmax: what is left to differ between 1 and 2 processes is the
    # order of float sums.
    settings = [f"data.dataset={toy}", "data.max_len=6", "train.progress=false", "model.dim=8",
                "model.num_layers=1", "model.ffn_dim=8", "model.dropout=0", "model.attention_dropout=0",
                "eval.ks=[5, 10]", "train.batch_size=10", "eval.batch_size=8", f"train.epochs={epochs}",
                "train.patience=5", f"name={name}"]
    return [arg for s in settings for arg in ("--set", s)] + ["--out", str(out)]


def _history(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_shares_cover_every_index_once_in_whole_units():
    for n in (0, 1, 7, 31, 64, 100):
        for unit in (1, 3, 8):
            for size in (1, 2, 3, 5):
                spans = [World(rank, size).share(n, unit) for rank in range(size)]
                assert [i for span in spans for i in span] == list(range(n))
                assert all(span.start % unit == 0 for span in spans if len(span))


@pytest.fixture(scope="module")
def trained(toy, tmp_path_factory) -> Path:
    """The same 3-epoch SASRec run in one process (``one``) and in two (``two``)."""
    out = tmp_path_factory.mktemp("runs")
    _hymirec("train", *_settings(toy, out, "one", 3))
    _torchrun("-m", "hymirec", "train", *_settings(toy, out, "two", 3))
    return out


def test_two_processes_train_what_one_trains(trained):
    one, two = _history(trained / "one"), _history(trained / "two")
    # Per-epoch training loss within float32 summation order; the validation metrics identical.
    assert [r["loss"] for r in two] == pytest.approx([r["loss"] for r in one], rel=1e-5)
    assert [r["valid"] for r in two] == [r["valid"] for r in one]
    a, b = (json.loads((trained / name / "results.json").read_text()) for name in ("one", "two"))
    for key in ("valid", "test_masked", "test_unmasked", "test_lists"):
        assert a[key] == b[key], key
    assert b["world_size"] == 2 and "world_size" not in a
    # Rank 0 alone wrote the run folder.
    assert sorted(p.name for p in (trained / "two").iterdir()) == sorted(p.name for p in (trained / "one").iterdir())


def test_sharded_evaluation_equals_one_process_exactly(trained, tmp_path):
    out = tmp_path / "sharded.json"
    _torchrun(str(TESTS / "distributed_worker.py"), "evaluate", str(out), str(trained / "one"))
    assert json.loads(out.read_text()) == json.loads(json.dumps(evaluate_run(trained / "one")[1]))


def test_a_run_of_two_processes_resumes_in_one(toy, trained, tmp_path):
    _torchrun("-m", "hymirec", "train", *_settings(toy, tmp_path, "killed", 2))
    _hymirec("train", *_settings(toy, tmp_path, "killed", 3), "--resume")
    resumed, whole = _history(tmp_path / "killed"), _history(trained / "two")
    assert [r["epoch"] for r in resumed] == [1, 2, 3]
    assert [r["loss"] for r in resumed] == pytest.approx([r["loss"] for r in whole], rel=1e-5)
    assert resumed[-1]["valid"] == whole[-1]["valid"]


def test_gathered_in_batch_negatives_carry_gradients_to_every_rank(tmp_path):
    out = tmp_path / "gradients.json"
    _torchrun(str(TESTS / "distributed_worker.py"), "in_batch_gradients", str(out))
    found = json.loads(out.read_text())
    assert found["max_error"] < 1e-5 * found["scale"]  # the whole batch's gradient, on every rank
    assert found["local_only_error"] > 0.1 * found["scale"]  # without gathering it is another one
    assert found["loss"] == pytest.approx(found["whole_loss"], rel=1e-6)


def test_codebook_encode_split_over_ranks_equals_one_process(tmp_path):
    out = tmp_path / "codes.json"
    _torchrun(str(TESTS / "distributed_worker.py"), "codebook_encode", str(out))
    found = json.loads(out.read_text())
    assert len(found) == 6 and all(found.values()), found


def test_the_whole_pipeline_runs_under_torchrun_and_resumes_in_one_process(toy, tmp_path):
    """``hymirec run`` in two processes: the training stages data-parallel, rank 0 alone writing;
    the folder then serves a one-process run, which reuses every stage."""
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(_pipeline(toy, codebook={"layers": 2, "k": 4})))
    env, out = {"HYMIREC_DATA_DIR": str(tmp_path / "cache")}, tmp_path / "run"
    printed = _torchrun("-m", "hymirec", "run", "--config", str(config), "--out", str(out), env=env).stdout
    assert printed.count("report: ") == 1  # one rank prints
    state = json.loads((out / "stages.json").read_text())
    assert list(state["done"]) == STAGE_NAMES and all((out / name).is_file() for name in OUTPUTS)
    for stage in ("stage1", "stage2"):
        assert json.loads((out / stage / "results.json").read_text())["world_size"] == 2
    again = _hymirec("run", "--config", str(config), "--out", str(out), env=env)
    assert again.stderr.count(": reused") == len(STAGE_NAMES)
    assert json.loads((out / "stages.json").read_text()) == state


def test_settings_a_world_cannot_train_are_refused_before_training(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(ConfigError, match="batch_size 128 is the global batch .* 3 processes"):
        join_training_world(load_experiment(None))
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="nccl, which needs a CUDA device"):
        join_world("nccl", torch.device("cpu"))
