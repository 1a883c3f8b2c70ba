"""The experiment configuration: what data, which model, how to train, how to evaluate."""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hymirec.config import ConfigError, Settings, apply_overrides, from_dict, load_yaml, require_positive, to_dict
from hymirec.data.split import check_split_options
from hymirec.evaluation.config import EvalConfig
from hymirec.training.losses.base import LossConfig

DEFAULT_MODEL = "sasrec"


@dataclass
class DataConfig(Settings):
    """Which dataset (a name in the data directory or a canonical dataset folder), how much of
    each history a model reads, and the split's options (``hymirec.data.split``): ``test_window``
    items held out per user for test (1: leave-one-out), and a share ``cold_items`` of the
    catalogue removed from training (seeded by ``cold_seed``).

    ``window_phase``: how training sequences longer than ``max_len`` are cut into rows
    (``hymirec.data.batching.training_windows``): ``fixed`` tiles of ``max_len`` from the end, or
    ``random``: the most recent tile fixed, the boundaries before it moved by a phase drawn per
    sequence and epoch, so that a position is not always read with the same context.

    ``window_context``: positions at the start of each window read as context only, overlapping
    the window before, so that no trained pair past a sequence's start has fewer earlier items in
    view (0: windows do not overlap; models that train on every position only).
    ``window_whole_prefix``: with a context, a sequence's oldest ``max_len`` items are read as
    one window, all trained (``true``, fewer rows); ``false``: every window trains at most
    ``max_len - window_context`` pairs and reads up to ``window_context`` items before them, so
    rows of a batch train about as many pairs each (HyMiRec: a long history before every
    trained window at the cost of a short one)."""

    dataset: str = "movielens-100k"
    data_dir: str | None = None
    max_len: int = 200
    window_phase: Literal["fixed", "random"] = "fixed"
    window_context: int = 0
    window_whole_prefix: bool = True
    test_window: int = 1
    cold_items: float = 0.0
    cold_seed: int = 0

    def validate(self) -> None:
        require_positive(self, ("max_len",), ValueError, "data.")
        if not 0 <= self.window_context < self.max_len:
            raise ValueError(f"data.window_context must be in [0, data.max_len={self.max_len}), "
                             f"got {self.window_context}")
        check_split_options(self.test_window, self.cold_items)


@dataclass
class ParamGroupConfig(Settings):
    """Settings for the parameters whose names start with a prefix (``train.param_groups``)."""

    lr: float | None = None
    weight_decay: float | None = None
    frozen: bool = False

    def validate(self) -> None:
        if self.lr is not None and self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.weight_decay is not None and self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")


@dataclass
class TrainConfig(Settings):
    """Optimiser, loss and schedule settings shared by every trainable model.

    ``loss`` is ``{name: <loss>, <that loss's settings>}`` (or just the name) in a file, held as
    that loss's typed config (``hymirec.training.losses``). ``selection_metric`` is the validation metric that picks the
    best epoch and drives early stopping. ``threads`` caps the intra-op CPU threads of the run
    (0: PyTorch's default, one per core); see docs/training.md for the contention measurement.

    ``param_groups`` maps a parameter-name prefix (a module path such as ``item_encoder`` or
    ``user_model.layers.0``) to its own learning rate / weight decay, or freezes it; the longest
    matching prefix wins. ``init_from`` starts from another run's best checkpoint (a run folder
    or a ``.safetensors`` file): the stages of a multi-stage model; ``init_modules`` limits it to
    the weights under those name prefixes (e.g. ``[items]``: only the stage-1 item encoder). ``grad_accumulation`` sums
    the gradients of that many batches per optimizer step; ``precision: bf16`` trains under
    bfloat16 autocast; ``device`` is ``cpu``, ``cuda`` (or ``cuda:N``), or ``auto`` (CUDA when
    present).

    ``schedule``: the learning rate over the run's ``epochs`` (counted in optimizer steps):
    ``constant``, or ``cosine`` / ``linear`` decay to 0 at the last epoch; ``warmup_steps`` ramps
    it up linearly from 0 first. Every model trains every training position once per epoch, so
    epochs (and the patience counted in them) are the same training signal for every model.

    ``backend`` / ``gather_negatives``: under ``torchrun`` (``hymirec.distributed``), the
    process group's backend (``auto``: NCCL on CUDA, gloo on the CPU) and whether in-batch and
    batch-shared sampled negatives are gathered from every rank, with their gradients (the global
    batch's negatives, as one process has them), or stay each rank's own.

    ``ema_decay``: when > 0, validation (and so the best-epoch pick), the best checkpoint and the
    test read an exponential moving average of the trainable weights, updated after every
    optimizer step with this decay (0.99 averages over about the last 100 steps); 0 reads the
    weights as trained. See ``hymirec.training.averaging``.
    """

    epochs: int = 200
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    loss: LossConfig = field(default_factory=LossConfig)
    patience: int = 20
    grad_clip: float | None = None
    selection_metric: str = "ndcg@10"
    threads: int = 0
    seed: int = 42
    progress: bool = True
    param_groups: dict[str, ParamGroupConfig] = field(default_factory=dict)
    init_from: str | None = None
    init_modules: list[str] | None = None
    grad_accumulation: int = 1
    precision: Literal["fp32", "bf16"] = "fp32"
    device: str = "cpu"
    schedule: Literal["constant", "cosine", "linear"] = "constant"
    warmup_steps: int = 0
    ema_decay: float = 0.0
    backend: Literal["auto", "gloo", "nccl"] = "auto"
    gather_negatives: bool = True

    def validate(self) -> None:
        if self.warmup_steps < 0:
            raise ValueError(f"train.warmup_steps must be >= 0, got {self.warmup_steps}")
        require_positive(self, ("epochs", "batch_size", "patience", "grad_accumulation"), ValueError, "train.")
        if self.lr <= 0:
            raise ValueError(f"train.lr must be > 0, got {self.lr}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"train.ema_decay must be in [0, 1) (0: no averaging), got {self.ema_decay}")
        if self.threads < 0:
            raise ValueError(f"train.threads must be >= 0 (0: one per core), got {self.threads}")
        self.selection_k  # raises for a malformed metric
        if self.device != "auto" and self.device != "cpu" and not self.device.startswith("cuda"):
            raise ValueError(f"train.device must be cpu, cuda, cuda:N or auto, got {self.device!r}")

    def lr_factor(self, step: int, total: int) -> float:
        """The learning rate's multiplier at optimizer step ``step`` (from 0) of ``total``."""
        warm = min(1.0, (step + 1) / self.warmup_steps) if self.warmup_steps else 1.0
        if self.schedule == "constant":
            return warm
        progress = min(1.0, max(0.0, (step - self.warmup_steps) / max(1, total - self.warmup_steps)))
        decay = 0.5 * (1 + math.cos(math.pi * progress)) if self.schedule == "cosine" else 1 - progress
        return warm * decay

    @property
    def selection_k(self) -> int:
        """The cut-off K of ``selection_metric`` (``ndcg@K`` or ``recall@K``)."""
        metric, _, k = self.selection_metric.partition("@")
        if metric not in ("recall", "ndcg") or not k.isdigit():
            raise ValueError(
                f"train.selection_metric must look like ndcg@K or recall@K, got {self.selection_metric!r}"
            )
        return int(k)


@dataclass
class ExperimentConfig(Settings):
    """One experiment. ``model`` holds ``name`` plus that model's own settings, which are
    checked against the model's config dataclass (unknown keys are rejected there)."""

    name: str = "experiment"
    out_dir: str = "runs"
    data: DataConfig = field(default_factory=DataConfig)
    model: dict[str, Any] = field(default_factory=lambda: {"name": DEFAULT_MODEL})
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def validate(self) -> None:
        k = self.train.selection_k
        if k not in self.eval.ks:
            raise ValueError(
                f"train.selection_metric {self.train.selection_metric!r} needs {k} in eval.ks {self.eval.ks}"
            )
        self.model_config  # reads and checks the model's settings (once: the result is kept)

    @property
    def model_name(self) -> str:
        return self.model["name"]

    @functools.cached_property
    def model_config(self) -> Any:
        """The model's settings as its typed config (``MODELS[name][0]``), read once: what the model
        is built from. ``model`` keeps the settings as the file gave them, which is what a run
        folder stores."""
        from hymirec.models import MODELS

        name = self.model.get("name")
        if name not in MODELS:
            raise ValueError(f"model.name {name!r} is unknown; choose one of {sorted(MODELS)}")
        settings = {k: v for k, v in self.model.items() if k != "name"}
        return from_dict(MODELS[name][0], settings, f"model ({name})")

    def model_sections(self) -> set[str]:
        """The settings sections the model's config class declares (``items``, ``history``, ...)."""
        return {f.name for f in dataclasses.fields(self.model_config)}

    @property
    def run_dir(self) -> Path:
        return Path(self.out_dir) / self.name


def load_experiment(path: str | Path | None, overrides: list[str] | None = None) -> ExperimentConfig:
    """Load a YAML experiment file (or the defaults), then apply ``section.key=value`` overrides."""
    data = load_yaml(path) if path is not None else {}
    data = apply_overrides(data, overrides or [])
    if isinstance(data.get("model"), dict):
        # The model section replaces the default as a whole; keep the default model's name.
        data["model"].setdefault("name", DEFAULT_MODEL)
    return from_dict(ExperimentConfig, data, str(path) if path else "config")


def dump_experiment(config: ExperimentConfig) -> dict[str, Any]:
    return to_dict(config)


def experiment_defaults(config: ExperimentConfig) -> dict[str, Any]:
    """Every setting at its default, in ``config``'s shape (its loss's own settings included): what
    ``config_diff`` passes over when an older run's settings lack a key."""
    defaults = dump_experiment(ExperimentConfig())
    defaults["train"]["loss"] = to_dict(type(config.train.loss)())
    return defaults


__all__ = [
    "ConfigError",
    "DataConfig",
    "EvalConfig",
    "ExperimentConfig",
    "ParamGroupConfig",
    "TrainConfig",
    "experiment_defaults",
    "load_experiment",
]
