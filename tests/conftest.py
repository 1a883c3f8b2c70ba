"""Shared fixtures."""

from __future__ import annotations

import pytest

from hymirec.data.dataset import InteractionDataset
from hymirec.data.fetch import load_dataset


@pytest.fixture(scope="session")
def ml100k() -> InteractionDataset:
    """The canonical MovieLens-100K, fetched once into the shared data directory
    (``$HYMIREC_DATA_DIR`` or ``~/.cache/hymirec``) and reused by every later run."""
    return load_dataset("movielens-100k")
