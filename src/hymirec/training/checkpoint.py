"""Training checkpoints in safetensors: weights, optimizer, RNG and trainer state.

A checkpoint holds the *trainable* state of a run only: trainable parameters and buffers, the
optimizer's state, RNG states and the trainer's bookkeeping. Frozen parameters (a pretrained
language model that is not fine-tuned) are rebuilt from their source, not copied into every
checkpoint; the checkpoint records a SHA-256 fingerprint of them so that loading it onto
different frozen weights is an error rather than a silently different model.

safetensors holds tensors only, so the optimizer's non-tensor state (param groups) and the
trainer's bookkeeping travel as JSON in the file's metadata. Files are written to a temporary
name and renamed, so a run killed mid-write leaves the previous checkpoint intact. Reading uses
safetensors only: nothing in a checkpoint is unpickled.

Each checkpoint is stamped with its layout (``FORMAT``) and the hymirec version that wrote it; a
checkpoint of another layout is refused naming both versions (one without a stamp predates it
and has layout 1).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from hymirec import __version__
from hymirec.io import atomic_write, read_safetensors

# The layout of a checkpoint's tensors and metadata: raised when it changes incompatibly.
FORMAT = 1


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, or belongs to a different configuration."""


@dataclass
class Checkpoint:
    """What ``read_checkpoint`` returns: ``weights`` named ``<module>.<state key>``."""

    weights: dict[str, torch.Tensor]
    rng: dict[str, torch.Tensor]
    state: dict[str, Any]
    optimizer: dict[str, Any] | None
    path: Path
    written_by: str | None = None  # the hymirec version that wrote it (None: before the stamp)


def _is_frozen(value: torch.Tensor) -> bool:
    return isinstance(value, nn.Parameter) and not value.requires_grad


def frozen_names(modules: dict[str, nn.Module]) -> list[str]:
    """``<module>.<key>`` of every frozen parameter of ``modules`` (name -> module)."""
    return [f"{prefix}.{key}" for prefix, module in modules.items()
            for key, value in module.state_dict(keep_vars=True).items() if _is_frozen(value)]


def trainable_state(modules: dict[str, nn.Module]) -> dict[str, torch.Tensor]:
    """The state to save of ``modules``: every buffer and every parameter that requires a
    gradient, named ``<module>.<key>``, copied to the CPU."""
    # Copies, so tied weights (one tensor under two names) become separate entries, which
    # safetensors requires; load_state_dict re-ties them.
    return {f"{prefix}.{key}": value.detach().to("cpu", copy=True).contiguous()
            for prefix, module in modules.items()
            for key, value in module.state_dict(keep_vars=True).items() if not _is_frozen(value)}


def fingerprint(modules: dict[str, nn.Module], names: list[str]) -> str:
    """SHA-256 over the named (frozen) parameters' names, dtypes, shapes and bytes."""
    digest = hashlib.sha256()
    states = {prefix: module.state_dict() for prefix, module in modules.items()}
    for name in sorted(names):
        prefix, key = name.split(".", 1)
        tensor = states[prefix][key].detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def save_checkpoint(
    path: str | Path,
    weights: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer | None,
    rng: dict[str, torch.Tensor],
    state: dict[str, Any],
) -> None:
    """Write ``weights``, the optimizer, RNG states and JSON ``state`` to ``path``."""
    tensors = {f"weights.{k}": v for k, v in weights.items()}
    meta: dict[str, str] = {"state": json.dumps(state), "format": str(FORMAT), "hymirec": __version__}
    if optimizer is not None:
        opt = optimizer.state_dict()
        for pid, pstate in opt["state"].items():
            for key, value in pstate.items():
                if not torch.is_tensor(value):
                    value = torch.tensor(value)
                tensors[f"optimizer.{pid}.{key}"] = value.detach().to("cpu", copy=True).contiguous()
        meta["param_groups"] = json.dumps(opt["param_groups"])
    for name, value in rng.items():
        tensors[f"rng.{name}"] = value.clone()
    path = Path(path)
    with atomic_write(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint written by ``save_checkpoint``; ``CheckpointError`` when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    meta, tensors = read_safetensors(
        path, framework="pt", error=CheckpointError, what="a readable safetensors checkpoint"
    )
    if "state" not in meta:
        raise CheckpointError(f"{path}: not a hymirec training checkpoint (no state metadata)")
    if meta.get("format", "1") != str(FORMAT):
        raise CheckpointError(f"{path}: checkpoint format {meta['format']} (written by hymirec "
                              f"{meta.get('hymirec', '?')}); this hymirec ({__version__}) reads format {FORMAT}")
    optimizer = None
    if "param_groups" in meta:
        opt_state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith("optimizer."):
                _, pid, name = key.split(".", 2)
                opt_state.setdefault(int(pid), {})[name] = value
        optimizer = {"state": opt_state, "param_groups": json.loads(meta["param_groups"])}
    return Checkpoint(
        weights={k[len("weights.") :]: v for k, v in tensors.items() if k.startswith("weights.")},
        rng={k[len("rng.") :]: v for k, v in tensors.items() if k.startswith("rng.")},
        state=json.loads(meta["state"]),
        optimizer=optimizer,
        path=path,
        written_by=meta.get("hymirec"),
    )


def load_weights(
    checkpoint: Checkpoint, modules: dict[str, nn.Module], frozen: list[str], frozen_fingerprint: str | None
) -> None:
    """Put the checkpoint's weights into ``modules``; the parameters it lacks must be exactly the
    ``frozen`` ones, whose ``fingerprint`` (computed by the caller, once: they do not change) must
    match the one the checkpoint was saved with."""
    for prefix, module in modules.items():
        sub = {k[len(prefix) + 1 :]: v for k, v in checkpoint.weights.items() if k.startswith(prefix + ".")}
        try:
            result = module.load_state_dict(sub, strict=False)
        except RuntimeError as exc:
            raise CheckpointError(f"{checkpoint.path}: weights of {prefix!r} do not fit this model: {exc}") from exc
        missing = {f"{prefix}.{k}" for k in result.missing_keys} - set(frozen)
        if missing or result.unexpected_keys:
            raise CheckpointError(
                f"{checkpoint.path}: weights of {prefix!r} do not fit this model "
                f"(missing {sorted(missing)[:5]}, unexpected {sorted(result.unexpected_keys)[:5]}); "
                "was it written with other settings?"
            )
    expected = checkpoint.state.get("frozen_fingerprint")
    if expected is not None and expected != frozen_fingerprint:
        raise CheckpointError(
            f"{checkpoint.path}: the frozen weights of this model differ from those the checkpoint "
            "was trained with (another backbone source or version?)"
        )
