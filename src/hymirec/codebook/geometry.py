"""What differs between the cosine and the Euclidean codebook, and nothing else.

The residual-quantiser loop (``codebook.py``) and balanced k-means (``balanced_kmeans.py``) are
written once; they ask a geometry how to score item/centroid pairs, which scale to store, how to
move a centroid and how to seed one. Every score is "higher is better" and comparable across
items, because the balanced assignment ranks items competing for a full cluster by it; the
nearest centroid is the best-scoring one.

faiss does the k-means initialisation. Nearest-centroid search is a blocked matrix product and
argmax in numpy instead of a faiss ``IndexFlat``: on this project's machines the faiss-cpu wheel
ships its own, older OpenBLAS, and ``IndexFlatIP.search`` of 65,536 x 384 queries against 512
centroids measured 5-8x slower (1.2-1.6 s against 0.16-0.27 s) than the same product through
numpy's OpenBLAS.
"""

from __future__ import annotations

from typing import Protocol

import faiss
import numpy as np
import scipy.sparse as sp


class Geometry(Protocol):
    """The variant-specific operations of a residual codebook."""

    has_scales: bool

    def scores(self, x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
        """``[n, k]`` item/centroid scores, higher is better, comparable across items."""

    def scale(self, x: np.ndarray, chosen: np.ndarray) -> np.ndarray:
        """Per item, the multiple of its chosen centroid that decoding adds back."""

    def update(self, x: np.ndarray, assign: np.ndarray, centroids: np.ndarray) -> np.ndarray:
        """New centroids for the assignment ``assign`` (one Lloyd step)."""

    def init(self, x: np.ndarray, k: int, seed: int, iters: int) -> np.ndarray:
        """Initial ``k`` centroids (faiss k-means)."""

    def from_points(self, points: np.ndarray) -> np.ndarray:
        """Centroids placed on ``points`` (to restart dead clusters)."""


def _cluster_sum(x: np.ndarray, assign: np.ndarray, weights: np.ndarray, k: int) -> np.ndarray:
    # A sparse (k x n) membership matrix turns the per-cluster weighted sum into one pass over x
    # without a python loop over clusters or the slow unbuffered np.add.at.
    member = sp.csr_matrix((weights, (assign, np.arange(len(assign)))), shape=(k, len(assign)))
    return np.asarray(member @ x, dtype=np.float32)


def _faiss_kmeans(x: np.ndarray, k: int, seed: int, iters: int, spherical: bool) -> np.ndarray:
    # Only a starting point for the balanced rounds, which see the whole basepool: 64 points per
    # centroid place the centroids well enough and make the start four times cheaper than
    # faiss's default of 256.
    kmeans = faiss.Kmeans(
        x.shape[1], k, niter=iters, seed=seed, spherical=spherical, max_points_per_centroid=64,
        min_points_per_centroid=1,
    )
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



def nearest(geometry: Geometry, x: np.ndarray, centroids: np.ndarray, block: int = 8192) -> np.ndarray:
    """Index of the best-scoring centroid for each row of ``x``.

    Blocks of rows keep the score matrix in cache-sized pieces instead of one ``n x k`` array."""
    out = np.empty(len(x), dtype=np.int64)
    for start in range(0, len(x), block):
        out[start : start + block] = geometry.scores(x[start : start + block], centroids).argmax(axis=1)
    return out


def _normalise(c: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(c, axis=1, keepdims=True)
    return np.divide(c, norms, out=np.zeros_like(c), where=norms > 0)


def make_geometry(variant: str, antipodal: bool) -> Geometry:
    """The geometry of ``variant`` (``cosine`` or ``euclidean``)."""
    return CosineGeometry(antipodal) if variant == "cosine" else EuclideanGeometry()
