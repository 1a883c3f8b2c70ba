"""Candidate retrieval: the exact index is the full ranking; HNSW finds nearly all of the exact
top-100 on clustered vectors, takes new items, and serves the same lists on a small catalogue."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hymirec.codebook import clustered_embeddings
from hymirec.config import ConfigError
from hymirec.serving.retrieval import ExactIndex, HNSWIndex, build_index, recall_at


@pytest.fixture(scope="module")
def catalogue():
    vectors = F.normalize(torch.from_numpy(clustered_embeddings(3000, 32, n_topics=16, seed=0)).float(), dim=-1)
    return torch.cat([torch.zeros(1, 32), vectors])


def test_exact_index_is_the_full_ranking(catalogue):
    queries = catalogue[[5, 50, 500]] + 0.1
    found = ExactIndex(catalogue).search(queries, 10)
    scores = queries @ catalogue.T
    scores[:, 0] = -torch.inf
    assert (found == scores.topk(10, dim=1).indices.numpy()).all()


def test_hnsw_recall_at_100_and_new_items(catalogue):
    queries = F.normalize(catalogue[1::60] + 0.05 * torch.randn(50, 32, generator=torch.Generator().manual_seed(1)),
                          dim=-1)
    index = build_index("hnsw", catalogue)
    assert isinstance(index, HNSWIndex) and recall_at(index, catalogue, queries, 100) >= 0.95
    new = F.normalize(torch.ones(32), dim=0)
    index.add(new)
    assert index.search(new[None], 1)[0, 0] == 3001
    with pytest.raises(ConfigError, match="index must be one of"):
        build_index("annoy", catalogue)
