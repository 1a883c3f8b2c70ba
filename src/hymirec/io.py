"""Files on disk: written whole or not at all, and safetensors files read with one error per caller.

* ``atomic_write(path)``: a temporary name next to ``path`` to write to; when the block completes it
  is renamed onto ``path`` (``os.replace``, atomic on one file system), so a reader, or a run
  killed mid-write, sees the old file or the whole new one, never a part. When the block raises,
  the temporary file is removed and ``path`` is untouched. ``write_text_atomic`` is the text case.
* ``replaced_dir(path)``: the same for a folder (a dataset, a raw download): filled under a
  temporary name, put in place of ``path`` once complete.
* ``read_safetensors(path, ...)``: a safetensors file's metadata and tensors, with whatever
  safetensors raises for a corrupt or foreign file turned into the caller's own error type.

Nothing here fsyncs: the files are caches and run outputs that can be made again, and the rename
is what keeps a reader from ever seeing half of one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from safetensors import safe_open


@contextmanager
def atomic_write(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder to write to; on success it replaces ``path``,
    on an exception it is deleted and ``path`` keeps its previous content. The temporary name
    carries the process id: two processes may fill the same file (a shared cache entry) at once."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through ``atomic_write``."""
    path = Path(path)
    with atomic_write(path) as tmp:
        tmp.write_text(text)
    return path


@contextmanager
def replaced_dir(path: str | Path) -> Iterator[Path]:
    """Yield a new empty folder next to ``path`` (``.<name>-XXXX``) to fill; on success it takes
    the place of ``path`` (an old ``path`` is removed first), on an exception it is removed and
    ``path`` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    try:
        yield staging
        if path.exists():
            shutil.rmtree(path)
        os.replace(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


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
