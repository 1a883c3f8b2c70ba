"""Run an experiment end to end: data -> split -> model -> training -> test metrics."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch

from hymirec.data.fetch import load_dataset
from hymirec.data.split import LeaveOneOutSplit
from hymirec.encoders.export import cache_key, cache_path, file_digest, write_embeddings
from hymirec.evaluation.inference import embed_catalogue, evaluate_splits
from hymirec.models import ModelInputs, build_model
from hymirec.models.base import SequentialRecommender
from hymirec.training.config import ExperimentConfig, dump_experiment, load_experiment
from hymirec.training.trainer import BEST, EpochCallback, Trainer


def load_split(config: ExperimentConfig) -> LeaveOneOutSplit:
    """The configured split of the configured dataset (leave-one-out unless ``data`` asks for a
    test window or cold items)."""
    data = config.data
    return LeaveOneOutSplit(load_dataset(data.dataset, data.data_dir), data.test_window, data.cold_items,
                            data.cold_seed)


def build(config: ExperimentConfig, split: LeaveOneOutSplit) -> SequentialRecommender:
    """The configured model, built from what the split offers (untrained)."""
    inputs = ModelInputs(split.n_items, config.data.max_len, split.dataset, split.train_sequences())
    return build_model(config.model_name, config.model_settings(), inputs)


def run_experiment(
    config: ExperimentConfig,
    resume: bool = False,
    overwrite: bool = False,
    callbacks: list[EpochCallback] | None = None,
) -> dict[str, Any]:
    """Train and evaluate; results are also written to the run folder."""
    run_dir = config.run_dir
    if overwrite and run_dir.exists():
        shutil.rmtree(run_dir)
    split = load_split(config)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    torch.manual_seed(config.train.seed)
    return Trainer(config, build(config, split), split, run_dir, callbacks).fit(resume=resume)


def restore_run(run_dir: Path, overrides: list[str] | None = None) -> tuple[ExperimentConfig, LeaveOneOutSplit, Trainer]:
    """A finished run's config, split and a trainer holding its best weights."""
    config = load_experiment(run_dir / "config.yaml", overrides)
    split = load_split(config)
    # Seeded as in training: randomly initialised frozen parts must be the ones trained with.
    torch.manual_seed(config.train.seed)
    trainer = Trainer(config, build(config, split), split, run_dir)
    trainer.load_best()
    return config, split, trainer


def evaluate_run(run_dir: str | Path, overrides: list[str] | None = None) -> tuple[ExperimentConfig, dict[str, Any]]:
    """Re-evaluate the best checkpoint of a finished run (overrides may change ``eval.*``)."""
    config, split, trainer = restore_run(Path(run_dir), overrides)
    with trainer.autocast():
        results = evaluate_splits(trainer.model, split, config.eval, config.data.max_len, trainer.normalize)
    return config, results


def export_run_embeddings(run_dir: str | Path, progress: bool = True) -> tuple[Path, bool]:
    """Every item's vector as the run's best model scores it (``embed_items``), exported to the
    embeddings cache; returns the file and whether it was already there (same run settings and
    the same checkpoint bytes)."""
    run_dir = Path(run_dir)
    config = load_experiment(run_dir / "config.yaml")
    source = {"run": dump_experiment(config), "checkpoint": file_digest(run_dir / BEST)}
    path = cache_path(cache_key(source))
    if path.is_file():
        return path, True
    config, split, trainer = restore_run(run_dir)
    with trainer.autocast():
        vectors = embed_catalogue(trainer.model, normalize=False, progress=progress)
    source["model"] = config.model_name
    return write_embeddings(path, vectors, split.dataset, source), False
