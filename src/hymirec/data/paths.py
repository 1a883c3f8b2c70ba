"""Where datasets live on disk.

The data directory is, in order of precedence: an explicit argument (the CLI's ``--data-dir``),
the ``HYMIREC_DATA_DIR`` environment variable, or ``~/.cache/hymirec``. A user cache rather than a
folder relative to the working directory, so that every command, test and notebook finds the
same fetched files wherever it runs. Inside it, ``NAME/`` holds a canonical dataset and
``raw/NAME/`` the downloaded source files it was converted from.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from hymirec.data.dataset import DataError

DATA_DIR_ENV = "HYMIREC_DATA_DIR"
DEFAULT_DATA_DIR = Path("~/.cache/hymirec")

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def data_dir(explicit: str | Path | None = None) -> Path:
    """The data directory: ``explicit`` if given, else ``$HYMIREC_DATA_DIR``, else ``~/.cache/hymirec``."""
    if explicit is not None:
        return Path(explicit).expanduser()
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return DEFAULT_DATA_DIR.expanduser()


def check_name(name: str) -> str:
    """Return ``name`` if it can name a dataset folder, else raise ``DataError``."""
    if not _NAME.fullmatch(name):
        raise DataError(
            f"invalid dataset name {name!r}: use letters, digits, '.', '_' and '-' "
            "(starting with a letter or digit)"
        )
    return name


def dataset_path(name: str, root: str | Path | None = None) -> Path:
    """Folder of the canonical dataset ``name`` inside the data directory."""
    return data_dir(root) / check_name(name)


def raw_path(name: str, root: str | Path | None = None) -> Path:
    """Folder of the raw source files of dataset ``name`` inside the data directory."""
    return data_dir(root) / "raw" / check_name(name)
