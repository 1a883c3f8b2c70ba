"""Run an experiment end to end: data -> split -> model -> training -> test metrics."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch

from hymirec.data.fetch import load_dataset
from hymirec.data.split import LeaveOneOutSplit
from hymirec.models import build_model
from hymirec.models.base import SequentialRecommender
from hymirec.models.mostpop import MostPop
from hymirec.training.checkpoint import load_checkpoint
from hymirec.training.config import ExperimentConfig, load_experiment
from hymirec.training.trainer import (
    BEST,
    EpochCallback,
    Trainer,
    evaluate_splits,
    write_results,
    write_run_config,
)


def load_split(config: ExperimentConfig) -> LeaveOneOutSplit:
    dataset = load_dataset(config.data.dataset, config.data.data_dir)
    return LeaveOneOutSplit(dataset)


def build(config: ExperimentConfig, split: LeaveOneOutSplit) -> SequentialRecommender | MostPop:
    """The configured model: MostPop fitted on the training prefixes, or an untrained network."""
    if config.model_name == "mostpop":
        return MostPop(split.n_items).fit(split.train_sequences())
    return build_model(config.model_name, config.model_settings(), split.n_items, config.data.max_len)


def run_experiment(
    config: ExperimentConfig,
    resume: bool = False,
    overwrite: bool = False,
    callbacks: list[EpochCallback] | None = None,
) -> dict[str, Any]:
    """Train (or fit, for MostPop) and evaluate; results are also written to the run folder."""
    run_dir = config.run_dir
    if overwrite and run_dir.exists():
        shutil.rmtree(run_dir)
    split = load_split(config)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    torch.manual_seed(config.train.seed)
    model = build(config, split)
    if isinstance(model, MostPop):
        write_run_config(run_dir, config)
        results = {**evaluate_splits(model, split, config), "model": "mostpop", "epochs": 0}
        return write_results(run_dir, results)
    return Trainer(config, model, split, run_dir, callbacks).fit(resume=resume)


def evaluate_run(run_dir: str | Path, overrides: list[str] | None = None) -> tuple[ExperimentConfig, dict[str, Any]]:
    """Re-evaluate the best checkpoint of a finished run (overrides may change ``eval.*``)."""
    run_dir = Path(run_dir)
    config = load_experiment(run_dir / "config.yaml", overrides)
    split = load_split(config)
    model = build(config, split)
    if not isinstance(model, MostPop):
        load_checkpoint(run_dir / BEST, {"model": model}, None)
    return config, evaluate_splits(model, split, config)
