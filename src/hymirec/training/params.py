"""Which parameters train, at which learning rate: ``train.param_groups`` applied to a model.

Groups are named by parameter-name prefixes relative to the model (``item_encoder``,
``user_model.layers.0``) or to the loss (``loss``, for a learnable temperature). Each parameter
takes the settings of its longest matching prefix, or the run's ``lr`` / ``weight_decay``. A
frozen group stops requiring gradients, is left out of the optimizer and out of checkpoints.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from hymirec.config import ConfigError
from hymirec.training.config import TrainConfig


def _matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def named_parameters(modules: dict[str, nn.Module]) -> list[tuple[str, nn.Parameter]]:
    """``(<module>.<parameter name>, parameter)`` for every module, shared parameters once."""
    seen: set[int] = set()
    out = []
    for prefix, module in modules.items():
        for name, param in module.named_parameters():
            if id(param) not in seen:
                seen.add(id(param))
                out.append((f"{prefix}.{name}", param))
    return out


def configure_parameters(modules: dict[str, nn.Module], config: TrainConfig) -> list[dict[str, Any]]:
    """Freeze the frozen groups and return AdamW parameter groups for every trainable parameter.

    ``modules`` is ``{"model": model, "loss": loss}``; a group prefix names a model parameter
    (``item_encoder``) or, when it starts with ``loss``, a loss parameter. A prefix that matches
    no parameter is a ``ConfigError`` listing the model's top-level modules.
    """
    params = named_parameters(modules)
    resolved = {}
    for prefix in config.param_groups:
        full = prefix if _matches(prefix.split(".")[0], "loss") else f"model.{prefix}"
        if not any(_matches(name, full) for name, _ in params):
            children = sorted({name.split(".")[1] for name, _ in params if name.startswith("model.")})
            raise ConfigError(
                f"train.param_groups.{prefix} matches no parameter; the model's modules are {children}"
            )
        resolved[full] = config.param_groups[prefix]
    groups: dict[tuple[float, float], list[nn.Parameter]] = {}
    for name, param in params:
        prefixes = [p for p in resolved if _matches(name, p)]
        group = resolved[max(prefixes, key=len)] if prefixes else None
        if group is not None and group.frozen:
            param.requires_grad_(False)
        if not param.requires_grad:
            continue
        lr = group.lr if group is not None and group.lr is not None else config.lr
        wd = group.weight_decay if group is not None and group.weight_decay is not None else config.weight_decay
        groups.setdefault((lr, wd), []).append(param)
    return [{"params": ps, "lr": lr, "weight_decay": wd} for (lr, wd), ps in groups.items()]


def resolve_device(name: str) -> torch.device:
    """``train.device`` as a torch device; asking for CUDA without one is an error, not a fallback."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device is {name!r} but no CUDA device is available; use cpu or auto")
    return torch.device(name)
