"""Files on disk: safetensors files read with one error per caller.

* ``read_safetensors(path, ...)``: a safetensors file's metadata and tensors, with whatever
  safetensors raises for a corrupt or foreign file turned into the caller's own error type.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from safetensors import safe_open


def read_safetensors(
    path: str | Path,
    *,
    framework: str,
    error: type[Exception],
    what: str,
    keys: Iterable[str] | None = None,
) -> tuple[dict[str, str], dict[str, Any]]:
    """``(metadata, tensors)`` of the safetensors file ``path``: every tensor, or only ``keys``,
    as ``framework`` (``"np"``, ``"pt"``) arrays. A file safetensors cannot read (a corrupt
    header, not safetensors at all, a missing key) raises ``error("<path>: not <what> (<why>)")``.
    A missing file is the caller's to check first: each says so in its own words."""
    try:
        with safe_open(str(path), framework=framework) as f:
            meta = dict(f.metadata() or {})
            tensors = {key: f.get_tensor(key) for key in (f.keys() if keys is None else keys)}
    except Exception as exc:  # safetensors raises its own error types for a corrupt file
        raise error(f"{path}: not {what} ({exc})") from exc
    return meta, tensors
