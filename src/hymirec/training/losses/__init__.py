"""Training losses, chosen by name like models (``train.loss: {name: ..., <settings>}``).

``LOSSES`` maps each name to its ``(ConfigClass, LossClass)``; every loss is built as
``LossClass(config, n_items)`` and called as ``loss(queries, positives, embed_items, generator)``,
except a ``multi_interest`` loss (``dmil``), called as ``loss(interests, targets, embed_items,
generator)`` with ``[P, s, D]`` interests and the next ``loss.window`` items ``[P, w]`` per example.
``auto`` is not a loss of its own: it picks ``full_softmax`` for catalogues of at most
``FULL_SOFTMAX_MAX_ITEMS`` items and ``sampled_softmax`` above (the measurement behind the
threshold is in docs/training.md), and takes only the settings the two share.
"""

from __future__ import annotations

from typing import Any

from hymirec.config import ConfigError, from_dict
from hymirec.training.losses.base import LossConfig, NextItemLoss
from hymirec.training.losses.dmil import DMILConfig, DMILLoss
from hymirec.training.losses.full_softmax import FullSoftmaxLoss
from hymirec.training.losses.sampled_softmax import SampledSoftmaxConfig, SampledSoftmaxLoss

LOSSES: dict[str, tuple[type[LossConfig], type[NextItemLoss]]] = {
    "full_softmax": (LossConfig, FullSoftmaxLoss),
    "sampled_softmax": (SampledSoftmaxConfig, SampledSoftmaxLoss),
    "dmil": (DMILConfig, DMILLoss),
}
AUTO = "auto"
# Up to here the full softmax costs no more than 128 per-position negatives (benchmarks/loss_cost.py:
# 527 vs 637 ms per step at 10,000 items, 2,617 vs 625 ms at 50,000; one CPU thread).
FULL_SOFTMAX_MAX_ITEMS = 10_000


def resolve_loss_name(name: str, n_items: int) -> str:
    """The loss ``name`` stands for on a catalogue of ``n_items`` (only ``auto`` depends on it)."""
    if name == AUTO:
        return "full_softmax" if n_items <= FULL_SOFTMAX_MAX_ITEMS else "sampled_softmax"
    return name


def loss_config(settings: dict[str, Any] | str | LossConfig, where: str = "train.loss") -> LossConfig:
    """The typed config of ``{name, <settings>}`` (or a bare name; a typed config is returned as
    it is). Raises ``ConfigError`` naming the key for an unknown loss, unknown settings or bad
    values."""
    if isinstance(settings, LossConfig):
        return settings
    settings = {"name": settings} if isinstance(settings, str) else settings
    if not isinstance(settings, dict):
        raise ConfigError(f"{where}: expected a loss name or a mapping with a name, got {settings!r}")
    name = settings.get("name", AUTO)
    if name != AUTO and name not in LOSSES:
        raise ConfigError(f"{where}.name {name!r} is unknown; choose one of {[AUTO, *LOSSES]}")
    config_cls = LossConfig if name == AUTO else LOSSES[name][0]
    return from_dict(config_cls, {**settings, "name": name}, f"{where} ({name})")


def build_loss(settings: LossConfig | dict[str, Any] | str, n_items: int, where: str = "train.loss") -> NextItemLoss:
    """The loss ``settings`` describe (a typed config, or settings ``loss_config`` reads), for a
    catalogue of ``n_items`` items."""
    config = loss_config(settings, where)
    name = resolve_loss_name(config.name, n_items)
    config_cls, loss_cls = LOSSES[name]
    if not isinstance(config, config_cls) or config.name != name:
        config = config_cls(**{**vars(config), "name": name})  # auto: the shared settings, the chosen loss
    try:
        return loss_cls(config, n_items)
    except ValueError as exc:
        raise ConfigError(f"{where} ({name}): {exc}") from exc


__all__ = [
    "AUTO",
    "FULL_SOFTMAX_MAX_ITEMS",
    "LOSSES",
    "DMILConfig",
    "DMILLoss",
    "FullSoftmaxLoss",
    "LossConfig",
    "NextItemLoss",
    "SampledSoftmaxConfig",
    "SampledSoftmaxLoss",
    "build_loss",
    "loss_config",
    "resolve_loss_name",
]
