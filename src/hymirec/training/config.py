"""The experiment configuration: what data, which model, how to train, how to evaluate."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hymirec.config import ConfigError, apply_overrides, from_dict, load_yaml, to_dict
from hymirec.evaluation.metrics import DEFAULT_KS

DEFAULT_MODEL = "sasrec"


@dataclass
class DataConfig:
    """Which dataset (a name in the data directory or a canonical dataset folder)."""

    dataset: str = "movielens-100k"
    data_dir: str | None = None
    max_len: int = 200

    def validate(self) -> None:
        if self.max_len < 1:
            raise ValueError(f"data.max_len must be >= 1, got {self.max_len}")


@dataclass
class TrainConfig:
    """Optimiser, loss and schedule settings shared by every trainable model.

    ``loss`` is ``{name: <loss>, <that loss's settings>}`` (or just the name); see
    ``hymirec.training.losses``. ``selection_metric`` is the validation metric that picks the
    best epoch and drives early stopping. ``threads`` caps the intra-op CPU threads of the run
    (0: PyTorch's default, one per core); see docs/training.md for the contention measurement.
    """

    epochs: int = 200
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    loss: dict[str, Any] | str = field(default_factory=lambda: {"name": "auto"})
    patience: int = 20
    grad_clip: float | None = None
    selection_metric: str = "ndcg@10"
    threads: int = 0
    seed: int = 42
    progress: bool = True

    def validate(self) -> None:
        from hymirec.training.losses import loss_config

        for name in ("epochs", "batch_size", "patience"):
            if getattr(self, name) < 1:
                raise ValueError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"train.lr must be > 0, got {self.lr}")
        if self.threads < 0:
            raise ValueError(f"train.threads must be >= 0 (0: one per core), got {self.threads}")
        self.loss = {"name": self.loss} if isinstance(self.loss, str) else {"name": "auto", **self.loss}
        loss_config(self.loss)
        self.selection_k  # raises for a malformed metric

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
class EvalConfig:
    """Full-ranking evaluation settings (see ``hymirec.evaluation``)."""

    ks: list[int] = field(default_factory=lambda: list(DEFAULT_KS))
    mask_history: bool = True
    batch_size: int = 1024

    def validate(self) -> None:
        if not self.ks or any(k < 1 for k in self.ks):
            raise ValueError(f"eval.ks must be positive cut-offs, got {self.ks}")


@dataclass
class ExperimentConfig:
    """One experiment. ``model`` holds ``name`` plus that model's own settings, which are
    checked against the model's config dataclass (unknown keys are rejected there)."""

    name: str = "experiment"
    out_dir: str = "runs"
    data: DataConfig = field(default_factory=DataConfig)
    model: dict[str, Any] = field(default_factory=lambda: {"name": DEFAULT_MODEL})
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def validate(self) -> None:
        from hymirec.models import MODELS

        k = self.train.selection_k
        if k not in self.eval.ks:
            raise ValueError(
                f"train.selection_metric {self.train.selection_metric!r} needs {k} in eval.ks {self.eval.ks}"
            )
        name = self.model.get("name")
        if name == "mostpop":
            if set(self.model) != {"name"}:
                raise ValueError("model: mostpop takes no settings besides name")
            return
        if name not in MODELS:
            raise ValueError(f"model.name {name!r} is unknown; choose one of {['mostpop', *MODELS]}")
        from_dict(MODELS[name][0], self.model_settings(), f"model ({name})")

    @property
    def model_name(self) -> str:
        return self.model["name"]

    def model_settings(self) -> dict[str, Any]:
        return {k: v for k, v in self.model.items() if k != "name"}

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


__all__ = ["ConfigError", "DataConfig", "EvalConfig", "ExperimentConfig", "TrainConfig", "load_experiment"]
