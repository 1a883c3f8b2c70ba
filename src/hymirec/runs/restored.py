"""A finished run restored for inference: its settings, split, model with the best weights, and
how it scores -- without a trainer, optimizer, training windows or a loss to train.

``RestoredRun.load`` takes any folder ``hymirec train`` or ``hymirec run`` wrote (a ``hymirec
run`` folder serves its ``stage2/``). The model is rebuilt exactly as the trainer built it (same
seed, so randomly initialised frozen parts are the trained-with ones; ``train.init_from`` and the
frozen ``train.param_groups`` applied), then the best checkpoint's weights are read with
safetensors (nothing is unpickled) and checked against the frozen weights' fingerprint. A folder
that is not a finished run, or whose settings or weights this hymirec cannot read (a run of
another version), is refused with a ``RunError`` naming the folder.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

import torch

from hymirec.config import ConfigError
from hymirec.data.split import ChronologicalSplit
from hymirec.distributed import join_world, rank_device
from hymirec.encoders.export import cache_key, cache_path, file_digest, write_embeddings
from hymirec.evaluation.inference import embed_catalogue, evaluate_splits
from hymirec.io import write_text_atomic
from hymirec.models.base import SequentialRecommender
from hymirec.training.checkpoint import CheckpointError, fingerprint, frozen_names, load_weights, read_checkpoint
from hymirec.training.config import ExperimentConfig, dump_experiment, load_experiment
from hymirec.training.losses import build_loss
from hymirec.training.params import configure_parameters, resolve_device
from hymirec.training.run import build, load_split
from hymirec.training.trainer import BEST, init_from, scores_are_cosine

CONFIG = "config.yaml"


class RunError(ConfigError):
    """A folder is not a finished run this hymirec can restore; the message names it."""


def run_folder(path: str | Path) -> Path:
    """The training run folder of ``path``: its ``stage2/`` for a ``hymirec run`` folder, else
    ``path`` itself when it is a ``hymirec train`` run; anything else is a ``RunError``."""
    path = Path(path)
    for candidate in (path / "stage2", path):
        if (candidate / CONFIG).is_file() and (candidate / BEST).is_file():
            return candidate
    raise RunError(
        f"{path} is not a finished run: neither it nor its stage2/ holds {CONFIG} and {BEST} "
        "(a folder of `hymirec run` or `hymirec train`)"
    )


@dataclass
class RestoredRun:
    """A run's ``config``, ``split`` and ``model`` (best weights, eval mode, on ``device``), and
    how it scores: ``cosine`` (cosine scores), ``merge`` (several interests into one list),
    ``precision`` (``fp32`` or ``bf16`` autocast, as trained)."""

    run_dir: Path
    config: ExperimentConfig
    split: ChronologicalSplit
    model: SequentialRecommender
    device: torch.device
    _catalogue: torch.Tensor | None = field(default=None, repr=False)

    @classmethod
    def load(cls, path: str | Path, overrides: list[str] | None = None, device: str | None = None) -> RestoredRun:
        """Restore the run in ``path`` (``overrides``: ``--set`` strings, e.g. ``eval.merge=...``;
        ``device``: where to run it, default the run's ``train.device``)."""
        run_dir = run_folder(path)
        try:
            config = load_experiment(run_dir / CONFIG, overrides)
        except ConfigError as exc:
            raise RunError(f"{run_dir}: its settings do not load in this hymirec (a run of another version?): "
                           f"{exc}") from exc
        split = load_split(config)
        target = rank_device(resolve_device(device or config.train.device))
        try:
            model = _restore_model(run_dir, config, split)
        except CheckpointError as exc:
            raise RunError(f"{run_dir}: its weights do not fit the model its settings build "
                           f"(a run of another version?): {exc}") from exc
        return cls(run_dir, config, split, model.to(target).eval(), target)

    @property
    def cosine(self) -> bool:
        """Whether items are scored by cosine (vectors L2-normalised) rather than dot product."""
        return scores_are_cosine(self.config, self.model)

    @property
    def merge(self) -> str:
        """How several interests make one list (``eval.merge``)."""
        return self.config.eval.merge

    @property
    def precision(self) -> str:
        return self.config.train.precision

    @property
    def max_len(self) -> int:
        """How many of a user's latest items the model reads."""
        return self.config.data.max_len

    def autocast(self) -> AbstractContextManager:
        """bf16 autocast when the run trained under it (a no-op context otherwise)."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")

    def catalogue(self) -> torch.Tensor:
        """``[n_items + 1, D]`` every item's vector as the run scores it, embedded once."""
        if self._catalogue is None:
            with self.autocast():
                self._catalogue = embed_catalogue(self.model, self.cosine, progress=False)
        return self._catalogue


def _restore_model(run_dir: Path, config: ExperimentConfig, split: ChronologicalSplit) -> SequentialRecommender:
    """The model as the trainer built it, with the best checkpoint's weights."""
    # Seeded as in training: randomly initialised frozen parts must be the ones trained with.
    torch.manual_seed(config.train.seed)
    model = build(config, split)
    if config.train.init_from:
        init_from(model, config.train.init_from, config.train.init_modules)
    # The loss is part of the checkpoint's module set (a learnable temperature), and the frozen
    # parameter groups decide which weights the checkpoint leaves out.
    modules = {"model": model, "loss": build_loss(config.train.loss, split.n_items)}
    configure_parameters(modules, config.train)
    frozen = frozen_names(modules)
    load_weights(read_checkpoint(run_dir / BEST), modules, frozen, fingerprint(modules, frozen) if frozen else None)
    return model


def evaluate_run(run_dir: str | Path, overrides: list[str] | None = None) -> tuple[ExperimentConfig, dict]:
    """Re-evaluate the best checkpoint of a finished run (overrides may change ``eval.*``)."""
    run = RestoredRun.load(run_dir, overrides)
    world = join_world(run.config.train.backend, run.device)  # under torchrun: users split over ranks
    with run.autocast():
        results = evaluate_splits(run.model, run.split, run.config.eval, run.max_len, run.cosine, world)
    return run.config, results


def update_results(run_dir: str | Path, results: dict) -> Path:
    """Merge re-evaluated ``results`` into a run's ``results.json`` (its training records, such as
    epochs and costs, kept); returns the file."""
    path = Path(run_dir) / "results.json"
    previous = json.loads(path.read_text()) if path.is_file() else {}
    return write_text_atomic(path, json.dumps({**previous, **results}, indent=2))


def export_run_embeddings(run_dir: str | Path, progress: bool = True) -> tuple[Path, bool]:
    """Every item's vector as the run's best model scores it (``embed_items``), exported to the
    embeddings cache; returns the file and whether it was already there (same run settings and
    the same checkpoint bytes)."""
    run_dir = Path(run_dir)
    config = load_experiment(run_dir / CONFIG)
    source = {"run": dump_experiment(config), "checkpoint": file_digest(run_dir / BEST)}
    path = cache_path(cache_key(source))
    if path.is_file():
        return path, True
    run = RestoredRun.load(run_dir)
    world = join_world(run.config.train.backend, run.device)  # under torchrun: the catalogue split over ranks
    with run.autocast():
        vectors = embed_catalogue(run.model, cosine=False, progress=progress, world=world)
    source["model"] = config.model_name
    if world.main:
        write_embeddings(path, vectors, run.split.dataset, source)
    world.barrier()  # the file is there for every rank
    return path, False
