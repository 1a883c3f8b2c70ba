"""Training checkpoints in safetensors: model, loss, optimizer, RNG and trainer state.

safetensors holds tensors only, so the optimizer's non-tensor state (param groups) and the
trainer's bookkeeping travel as JSON in the file's metadata. Files are written to a temporary
name and renamed, so a run killed mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, or belongs to a different configuration."""


def _flat(prefix: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # Clone so tied weights (one tensor under two names) become separate entries, which
    # safetensors requires; the model re-ties them on load_state_dict.
    return {f"{prefix}.{k}": v.detach().clone().contiguous() for k, v in state.items()}


def save_checkpoint(
    path: str | Path,
    modules: dict[str, torch.nn.Module],
    optimizer: torch.optim.Optimizer | None,
    rng: dict[str, torch.Tensor],
    state: dict[str, Any],
) -> None:
    """Write ``modules`` (name -> module), the optimizer, RNG states and JSON ``state``."""
    tensors: dict[str, torch.Tensor] = {}
    for name, module in modules.items():
        tensors.update(_flat(f"module.{name}", module.state_dict()))
    meta: dict[str, str] = {"state": json.dumps(state)}
    if optimizer is not None:
        opt = optimizer.state_dict()
        for pid, pstate in opt["state"].items():
            for key, value in pstate.items():
                if not torch.is_tensor(value):
                    value = torch.tensor(value)
                tensors[f"optimizer.{pid}.{key}"] = value.detach().clone().contiguous()
        meta["param_groups"] = json.dumps(opt["param_groups"])
    for name, value in rng.items():
        tensors[f"rng.{name}"] = value.clone()
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    os.replace(tmp, path)


def load_checkpoint(
    path: str | Path,
    modules: dict[str, torch.nn.Module],
    optimizer: torch.optim.Optimizer | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Restore ``modules`` and ``optimizer`` in place; return the RNG states and JSON state."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise CheckpointError(f"{path}: not a readable safetensors checkpoint ({exc})") from exc
    if "state" not in meta:
        raise CheckpointError(f"{path}: not a hymirec training checkpoint (no state metadata)")
    for name, module in modules.items():
        prefix = f"module.{name}."
        sub = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            module.load_state_dict(sub)
        except RuntimeError as exc:
            raise CheckpointError(f"{path}: weights of {name!r} do not fit this model: {exc}") from exc
    if optimizer is not None:
        if "param_groups" not in meta:
            raise CheckpointError(f"{path}: has no optimizer state to resume from")
        opt_state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith("optimizer."):
                _, pid, name = key.split(".", 2)
                opt_state.setdefault(int(pid), {})[name] = value
        optimizer.load_state_dict(
            {"state": opt_state, "param_groups": json.loads(meta["param_groups"])}
        )
    rng = {k[len("rng.") :]: v for k, v in tensors.items() if k.startswith("rng.")}
    return rng, json.loads(meta["state"])
