"""Candidate retrieval over the catalogue: each interest's best items by inner product.

``exact`` (the default) scores every item: the evaluator's ranking, exactly. ``hnsw`` is a faiss
HNSW graph (inner-product metric) for catalogues too large to score per request: faiss is already
a dependency of hymirec (the codebook benchmark compares against its quantizers), HNSW needs no
training and takes new items one at a time (cold start), which IVF- or PQ-based indexes would not
without retraining. Its recall against exact is measured by ``recall_at`` (``benchmarks/
serving_index.py`` on a real catalogue; ``docs/serving.md`` quotes it).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod

import faiss
import numpy as np
import torch

from hymirec.config import ConfigError
from hymirec.serving.config import INDEXES


class CandidateIndex(ABC):
    """Items ``1..N`` with their vectors; ``search`` gives each interest's ``n`` best ids."""

    @abstractmethod
    def search(self, users: torch.Tensor, n: int) -> np.ndarray:
        """``[K, n]`` item ids (1-based; best first) for ``[K, D]`` interest vectors."""

    @abstractmethod
    def add(self, vector: torch.Tensor) -> None:
        """Index one more item (the next id) with its ``[D]`` vector."""


class ExactIndex(CandidateIndex):
    """Every item scored: ``topk`` of the full inner products."""

    def __init__(self, vectors: torch.Tensor) -> None:
        self.vectors = vectors[1:].float()

    def search(self, users: torch.Tensor, n: int) -> np.ndarray:
        vectors = self.vectors  # one read: an item added meanwhile is in the next search
        return vectors.matmul(users.float().T).T.topk(min(n, len(vectors)), dim=1).indices.numpy() + 1

    def add(self, vector: torch.Tensor) -> None:
        self.vectors = torch.cat([self.vectors, vector[None].float()])


class HNSWIndex(CandidateIndex):
    """A faiss ``IndexHNSWFlat`` over the items (inner product), ``m`` links per node, searched
    with ``ef`` candidates (at least ``n``)."""

    def __init__(self, vectors: torch.Tensor, m: int = 32, ef: int = 128) -> None:
        self.ef = ef
        self.index = faiss.IndexHNSWFlat(vectors.shape[1], m, faiss.METRIC_INNER_PRODUCT)
        self.index.hnsw.efConstruction = 2 * ef
        self.index.add(np.ascontiguousarray(vectors[1:].float().numpy()))
        # faiss does not search and add concurrently.
        self._lock = threading.Lock()

    def search(self, users: torch.Tensor, n: int) -> np.ndarray:
        n = min(n, self.index.ntotal)
        with self._lock:
            self.index.hnsw.efSearch = max(self.ef, n)
            _, labels = self.index.search(np.ascontiguousarray(users.float().numpy()), n)
        return labels + 1  # -1 (fewer found than asked) becomes 0: padding, never recommended

    def add(self, vector: torch.Tensor) -> None:
        with self._lock:
            self.index.add(np.ascontiguousarray(vector[None].float().numpy()))


def build_index(name: str, vectors: torch.Tensor) -> CandidateIndex:
    """The ``exact`` or ``hnsw`` index of ``[N + 1, D]`` catalogue vectors (row 0 padding)."""
    if name == "exact":
        return ExactIndex(vectors)
    if name == "hnsw":
        return HNSWIndex(vectors)
    raise ConfigError(f"index must be one of {INDEXES}, got {name!r}")


def recall_at(index: CandidateIndex, vectors: torch.Tensor, users: torch.Tensor, k: int) -> float:
    """Mean share of each ``[K, D]`` query row's exact top-``k`` items that ``index`` returns in
    its top ``k`` (``users`` ``[Q, D]``)."""
    exact = ExactIndex(vectors).search(users, k)
    found = index.search(users, k)
    return float(np.mean([len(np.intersect1d(e, f)) / len(e) for e, f in zip(exact, found)]))
