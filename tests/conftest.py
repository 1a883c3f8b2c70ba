"""Shared fixtures. Nothing here downloads: the suite runs without a network."""

from __future__ import annotations

import pytest
from data_samples import write_sample_grouplens_zip

from hymirec.data.dataset import InteractionDataset
from hymirec.data.fetch import SourceUnavailable, fetch_movielens_100k, load_dataset


def _no_fallback(folder):
    raise SourceUnavailable("the tests never download")


@pytest.fixture(scope="session")
def ml100k(tmp_path_factory) -> InteractionDataset:
    """``load_dataset("movielens-100k")`` of a data directory of its own, filled from the
    committed MovieLens-100K-format sample (``data_samples.ML100K_SAMPLE``: 30 users, 40 movies,
    300 ratings) through the real fetch: GroupLens' archive layout, read from a local file."""
    root = tmp_path_factory.mktemp("ml100k")
    archive = write_sample_grouplens_zip(root / "ml-100k.zip")
    fetch_movielens_100k(root / "data", url=archive.as_uri(), fallback=_no_fallback)
    return load_dataset("movielens-100k", root / "data")
