"""Run an experiment end to end: data -> split -> model -> training -> test metrics."""

from __future__ import annotations

import json
import logging
import resource
import shutil
from pathlib import Path
from typing import Any

import torch
import yaml

from hymirec.data.fetch import load_dataset
from hymirec.data.split import LeaveOneOutSplit
from hymirec.models import build_model
from hymirec.models.mostpop import MostPop
from hymirec.training.checkpoint import load_checkpoint
from hymirec.training.config import ExperimentConfig, dump_experiment, load_experiment
from hymirec.training.trainer import BEST, EpochCallback, Trainer, evaluate_splits

log = logging.getLogger(__name__)


def load_split(config: ExperimentConfig) -> LeaveOneOutSplit:
    dataset = load_dataset(config.data.dataset, config.data.data_dir)
    return LeaveOneOutSplit(dataset)


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
    # Saturated recurrent states drift into subnormal floats, which x86 CPUs process ~100x slower:
    # a GRU4Rec evaluation pass was seen to stall for minutes. Flushing them to zero avoids that.
    torch.set_flush_denormal(True)
    torch.manual_seed(config.train.seed)
    if config.model_name == "mostpop":
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(yaml.safe_dump(dump_experiment(config), sort_keys=False))
        model = MostPop(split.n_items).fit(split.train_sequences())
        results = evaluate_splits(model, split, config)
        results.update(model="mostpop", epochs=0, peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        (run_dir / "results.json").write_text(json.dumps(results, indent=2))
        return results
    model = build_model(config.model_name, config.model_settings(), split.n_items, config.data.max_len)
    return Trainer(config, model, split, run_dir, callbacks).fit(resume=resume)


def evaluate_run(run_dir: str | Path, overrides: list[str] | None = None) -> tuple[ExperimentConfig, dict[str, Any]]:
    """Re-evaluate the best checkpoint of a finished run (overrides may change ``eval.*``)."""
    run_dir = Path(run_dir)
    config = load_experiment(run_dir / "config.yaml", overrides)
    split = load_split(config)
    if config.model_name == "mostpop":
        model = MostPop(split.n_items).fit(split.train_sequences())
    else:
        model = build_model(config.model_name, config.model_settings(), split.n_items, config.data.max_len)
        load_checkpoint(run_dir / BEST, {"model": model}, None)
    return config, evaluate_splits(model, split, config)
