"""Files of the codebook package: the codebook itself, encoded items, and input embeddings.

Everything is safetensors; the settings and fit summary of a codebook travel inside the file's
own JSON header (safetensors metadata), so one file is self-describing and nothing is pickled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

from hymirec.codebook.errors import CodebookError
from hymirec.io import atomic_write, read_safetensors

FORMAT = "hymirec-codebook"
FORMAT_VERSION = 1
_HEADER_KEY = "hymirec_codebook"


def write_codebook(path: str | Path, header: dict[str, Any], tensors: dict[str, np.ndarray]) -> Path:
    """Write ``tensors`` and the JSON ``header`` (settings, fit summary) to one safetensors file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {_HEADER_KEY: json.dumps({"format": FORMAT, "format_version": FORMAT_VERSION, **header})}
    with atomic_write(path) as tmp:
        save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(tmp), metadata=meta)
    return path


def read_codebook(path: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read a file written by ``write_codebook``; refuse anything else with a clear error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"codebook file not found: {path}")
    meta, tensors = read_safetensors(path, framework="np", error=CodebookError, what="a safetensors file")
    if _HEADER_KEY not in meta:
        raise CodebookError(f"{path}: a safetensors file without a hymirec codebook header")
    header = json.loads(meta[_HEADER_KEY])
    if header.get("format") != FORMAT or header.get("format_version") != FORMAT_VERSION:
        raise CodebookError(
            f"{path}: format {header.get('format')!r} version {header.get('format_version')!r}; "
            f"this hymirec reads {FORMAT!r} version {FORMAT_VERSION}"
        )
    return header, tensors


def save_codes(path: str | Path, codes: np.ndarray, scales: np.ndarray | None) -> Path:
    """Write encoded items (``codes`` [n, L] and, for the cosine variant, ``scales`` [n, L])."""
    tensors = {"codes": codes} if scales is None else {"codes": codes, "scales": scales}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(tmp))
    return path


def load_codes(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a file written by ``save_codes``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"codes file not found: {path}")
    with safe_open(str(path), framework="np") as f:
        keys = set(f.keys())
        if "codes" not in keys:
            raise CodebookError(f"{path}: no 'codes' tensor (found {sorted(keys)})")
        codes = f.get_tensor("codes")
        scales = f.get_tensor("scales") if "scales" in keys else None
    return codes, scales


def load_embeddings(path: str | Path, key: str | None = None) -> np.ndarray:
    """Item embeddings ``[n, d]`` from ``.npy`` (memory-mapped, so a large file is read only as
    far as it is used) or ``.safetensors`` (tensor ``key``, else the only tensor, else
    ``embeddings``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"embeddings file not found: {path}")
    if path.suffix == ".npy":
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError as exc:
            raise CodebookError(f"{path}: not a plain numeric .npy array ({exc})") from exc
    elif path.suffix == ".safetensors":
        with safe_open(str(path), framework="np") as f:
            keys = list(f.keys())
            if key is None:
                key = keys[0] if len(keys) == 1 else "embeddings"
            if key not in keys:
                raise CodebookError(f"{path}: no tensor {key!r}; it holds {keys}")
            array = f.get_tensor(key)
    else:
        raise CodebookError(f"{path}: embeddings must be a .npy or .safetensors file")
    if array.ndim != 2:
        raise CodebookError(f"{path}: embeddings must be 2-D [items, dim], got shape {array.shape}")
    return array
