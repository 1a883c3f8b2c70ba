"""Run an experiment end to end: data -> split -> model -> training -> test metrics."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch

from hymirec.data.fetch import load_dataset
from hymirec.data.split import ChronologicalSplit
from hymirec.models import ModelInputs, build_model
from hymirec.models.base import SequentialRecommender
from hymirec.training.config import ExperimentConfig
from hymirec.training.trainer import EpochCallback, Trainer, join_training_world


def load_split(config: ExperimentConfig) -> ChronologicalSplit:
    """The configured split of the configured dataset (leave-one-out unless ``data`` asks for a
    test window or cold items)."""
    data = config.data
    return ChronologicalSplit(load_dataset(data.dataset, data.data_dir), data.test_window, data.cold_items,
                            data.cold_seed)


def build(config: ExperimentConfig, split: ChronologicalSplit) -> SequentialRecommender:
    """The configured model, built from what the split offers (untrained)."""
    inputs = ModelInputs(split.n_items, config.data.max_len, split.dataset, split.train_sequences())
    return build_model(config.model_name, config.model_config, inputs)


def run_experiment(
    config: ExperimentConfig,
    resume: bool = False,
    overwrite: bool = False,
    callbacks: list[EpochCallback] | None = None,
) -> dict[str, Any]:
    """Train and evaluate; results are also written to the run folder."""
    run_dir = config.run_dir
    world, _ = join_training_world(config)
    if overwrite and run_dir.exists() and world.main:
        shutil.rmtree(run_dir)
    world.barrier()  # no rank looks at the folder before it is gone
    split = load_split(config)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    torch.manual_seed(config.train.seed)
    return Trainer(config, build(config, split), split, run_dir, callbacks).fit(resume=resume)
