import json

import numpy as np
import pytest
import torch

from hymirec.data.split import LeaveOneOutSplit
from hymirec.models import build_model
from hymirec.training.checkpoint import CheckpointError
from hymirec.training.config import load_experiment
from hymirec.training.trainer import Trainer
from helpers import make_dataset


def _toy_split(seed=0, n_users=60, n_items=40):
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(1, n_users + 1):
        # Each user walks a cycle through the catalogue with a user-specific stride: learnable.
        start, stride = int(rng.integers(1, n_items + 1)), int(rng.integers(1, 3))
        for t in range(int(rng.integers(6, 15))):
            rows.append((u, (start + stride * t - 1) % n_items + 1, 100 * t))
    return LeaveOneOutSplit(make_dataset(rows, n_items=n_items))


def _config(tmp_path, **train):
    overrides = [
        "model.name=sasrec", "model.dim=16", "model.num_layers=1", "data.max_len=8",
        "train.batch_size=16", "train.num_negatives=8", "train.progress=false", "eval.ks=[10, 20]",
        f"out_dir={tmp_path}",
    ] + [f"train.{k}={v}" for k, v in train.items()]
    return load_experiment(None, overrides)


def _trainer(config, split, callbacks=None):
    torch.manual_seed(config.train.seed)
    model = build_model(config.model_name, config.model_settings(), split.n_items, config.data.max_len)
    return Trainer(config, model, split, config.run_dir, callbacks)


def test_training_learns_and_writes_its_files(tmp_path):
    split = _toy_split()
    config = _config(tmp_path, epochs=8, lr=0.01)
    results = _trainer(config, split).fit()
    run = config.run_dir
    for name in ("last.safetensors", "best.safetensors", "metrics.jsonl", "results.json",
                 "config.yaml", "training_curves.png"):
        assert (run / name).is_file(), name
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == list(range(1, 9))
    assert history[-1]["loss"] < history[0]["loss"]
    # Far better than chance (R@10 = 10/40 at random) on a deterministic-cycle dataset.
    assert results["test_masked"]["recall@10"] > 0.5
    assert results["test_masked"]["recall@10"] >= results["test_unmasked"]["recall@10"] - 1e-9


def test_killed_run_resumes_to_identical_results(tmp_path):
    split = _toy_split()
    full = _trainer(_config(tmp_path / "a", epochs=3, lr=0.01), split).fit()

    def kill_after_first_epoch(epoch, record):
        if epoch == 1:
            raise KeyboardInterrupt

    config_b = _config(tmp_path / "b", epochs=3, lr=0.01)
    with pytest.raises(KeyboardInterrupt):
        _trainer(config_b, split, [kill_after_first_epoch]).fit()
    # A fresh process would start from different global RNG state; resume must not care.
    torch.manual_seed(1234)
    resumed = _trainer(config_b, split).fit(resume=True)
    assert resumed["test_masked"] == full["test_masked"]
    assert resumed["valid"] == full["valid"]
    assert resumed["epochs"] == full["epochs"] == 3


def test_same_seed_same_results_and_existing_run_is_protected(tmp_path):
    split = _toy_split()
    a = _trainer(_config(tmp_path / "a", epochs=2), split).fit()
    b = _trainer(_config(tmp_path / "b", epochs=2), split).fit()
    assert a["test_masked"] == b["test_masked"]
    with pytest.raises(CheckpointError, match="--resume"):
        _trainer(_config(tmp_path / "a", epochs=2), split).fit()


def test_resume_refuses_a_different_configuration(tmp_path):
    split = _toy_split()
    _trainer(_config(tmp_path, epochs=1), split).fit()
    with pytest.raises(CheckpointError, match="train.lr"):
        _trainer(_config(tmp_path, epochs=2, lr=0.5), split).fit(resume=True)


def test_early_stopping_stops_after_patience(tmp_path):
    split = _toy_split()
    # lr 0 -> validation never improves after epoch 1 -> stop after 1 + patience epochs.
    results = _trainer(_config(tmp_path, epochs=20, lr=1e-12, patience=2), split).fit()
    assert results["epochs"] == 3 and results["best_epoch"] == 1
