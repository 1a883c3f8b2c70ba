"""What differs between the cosine and the Euclidean codebook, and nothing else.

The residual-quantiser loop (``quantiser.py``) and balanced k-means (``balanced_kmeans.py``) are
written once; they ask a geometry how to score item/centroid pairs, which scale to store, how to
move a centroid, and how to search the nearest one. Every score is "higher is better" and
comparable across items, because the balanced assignment ranks items competing for a full
cluster by it.
"""

from __future__ import annotations

from typing import Protocol

import faiss
import numpy as np
import scipy.sparse as sp


class Geometry(Protocol):
    has_scales: bool

    def scores(self, x: np.ndarray, centroids: np.ndarray) -> np.ndarray: ...

    def scale(self, x: np.ndarray, chosen: np.ndarray) -> np.ndarray: ...

    def update(self, x: np.ndarray, assign: np.ndarray, centroids: np.ndarray) -> np.ndarray: ...

    def init(self, x: np.ndarray, k: int, seed: int, iters: int) -> np.ndarray: ...

    def from_points(self, points: np.ndarray) -> np.ndarray: ...

    def index(self, centroids: np.ndarray) -> faiss.Index: ...


def _cluster_sum(x: np.ndarray, assign: np.ndarray, weights: np.ndarray, k: int) -> np.ndarray:
    # A sparse (k x n) membership matrix turns the per-cluster weighted sum into one pass over x
    # without a python loop over clusters or the slow unbuffered np.add.at.
    member = sp.csr_matrix((weights, (assign, np.arange(len(assign)))), shape=(k, len(assign)))
    return np.asarray(member @ x, dtype=np.float32)


def _faiss_kmeans(x: np.ndarray, k: int, seed: int, iters: int, spherical: bool) -> np.ndarray:
    kmeans = faiss.Kmeans(x.shape[1], k, niter=iters, seed=seed, spherical=spherical)
    kmeans.train(np.ascontiguousarray(x, dtype=np.float32))
    return np.asarray(kmeans.centroids, dtype=np.float32)


def _rowdot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", a, b)


class CosineGeometry:
    """The paper's: unit-norm centroids, scale ``e.c / ||c||^2``, residual orthogonal to ``c``.

    The score of an item for a centroid is its projection ``e.c`` on the unit centroid: for one
    item it ranks centroids exactly as cosine similarity does, and across items it prefers the
    items whose projection removes the most energy, which is what the next layer is spared.
    """

    has_scales = True

    def __init__(self, antipodal: bool) -> None:
        self.antipodal = antipodal

    def scores(self, x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
        s = x @ centroids.T
        return np.abs(s, out=s) if self.antipodal else s

    def scale(self, x: np.ndarray, chosen: np.ndarray) -> np.ndarray:
        return _rowdot(x, chosen) / _rowdot(chosen, chosen)

    def update(self, x: np.ndarray, assign: np.ndarray, centroids: np.ndarray) -> np.ndarray:
        # The energy a cluster's centroid removes is sum((e.c)^2), maximised by the top
        # eigenvector of the cluster's scatter matrix; one power-iteration step from the current
        # centroid, c <- normalise(sum (e.c) e), never decreases it and costs one pass over x.
        # With positive projections this is the usual spherical mean, weighted by projection.
        weights = _rowdot(x, centroids[assign])
        return _normalise(_cluster_sum(x, assign, weights, len(centroids)))

    def init(self, x: np.ndarray, k: int, seed: int, iters: int) -> np.ndarray:
        return _normalise(_faiss_kmeans(x, k, seed, iters, spherical=True))

    def from_points(self, points: np.ndarray) -> np.ndarray:
        return _normalise(points.astype(np.float32))

    def index(self, centroids: np.ndarray) -> faiss.Index:
        # Searching [C; -C] by inner product finds the largest |e.c| in one faiss call; row
        # ``k + j`` of the table is centroid ``j`` again, which ``nearest`` folds back.
        table = np.vstack([centroids, -centroids]) if self.antipodal else centroids
        index = faiss.IndexFlatIP(centroids.shape[1])
        index.add(np.ascontiguousarray(table, dtype=np.float32))
        return index


class EuclideanGeometry:
    """Standard residual quantisation (the paper's ablation): residual ``e - c``, no scales."""

    has_scales = False

    def scores(self, x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
        s = x @ centroids.T
        s *= 2
        s -= _rowdot(centroids, centroids)[None, :]
        s -= _rowdot(x, x)[:, None]
        return s

    def scale(self, x: np.ndarray, chosen: np.ndarray) -> np.ndarray:
        return np.ones(len(x), dtype=np.float32)

    def update(self, x: np.ndarray, assign: np.ndarray, centroids: np.ndarray) -> np.ndarray:
        k = len(centroids)
        counts = np.bincount(assign, minlength=k).astype(np.float32)
        weights = (1.0 / np.maximum(counts, 1.0))[assign]
        return _cluster_sum(x, assign, weights, k)

    def init(self, x: np.ndarray, k: int, seed: int, iters: int) -> np.ndarray:
        return _faiss_kmeans(x, k, seed, iters, spherical=False)

    def from_points(self, points: np.ndarray) -> np.ndarray:
        return points.astype(np.float32)

    def index(self, centroids: np.ndarray) -> faiss.Index:
        index = faiss.IndexFlatL2(centroids.shape[1])
        index.add(np.ascontiguousarray(centroids, dtype=np.float32))
        return index


def nearest(index: faiss.Index, x: np.ndarray, k: int) -> np.ndarray:
    """Code of the best centroid of each row of ``x`` among the ``k`` held in ``index``."""
    _, found = index.search(np.ascontiguousarray(x, dtype=np.float32), 1)
    return found[:, 0] % k


def _normalise(c: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(c, axis=1, keepdims=True)
    return np.divide(c, norms, out=np.zeros_like(c), where=norms > 0)


def make_geometry(variant: str, antipodal: bool) -> Geometry:
    """The geometry of ``variant`` (``cosine`` or ``euclidean``)."""
    return CosineGeometry(antipodal) if variant == "cosine" else EuclideanGeometry()
