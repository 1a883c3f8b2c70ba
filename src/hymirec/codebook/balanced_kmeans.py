"""Balanced k-means for one codebook layer: faiss k-means to start, a capacity cap to balance.

Balancing is a hard capacity constraint, not Sinkhorn. A cap gives a guarantee that can be
stated and tested (no cluster above ``ceil((1 + slack) n / k)`` items) and an exact, discrete
assignment, while Sinkhorn gives soft marginals whose rounding can still overfill a cluster and
needs a temperature and an iteration count tuned per layer. The cap is met by deferred
acceptance: every unassigned item proposes to its best open cluster, a cluster keeps the
best-scoring proposers up to its remaining room and closes when full, rejected items propose
again. Each round closes at least one cluster or assigns everyone, so it ends after at most
``k + 1`` rounds, and in practice after a handful.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hymirec.codebook.geometry import Geometry


def capacity(n: int, k: int, slack: float) -> int:
    """The most items a cluster may hold when ``n`` items are balanced over ``k`` clusters."""
    return math.ceil((1.0 + slack) * n / k)


def capacity_assign(scores: np.ndarray, cap: int) -> np.ndarray:
    """Assign each row of ``scores`` (items x clusters, higher is better) to a cluster so that
    no cluster gets more than ``cap`` rows, each row taking the best cluster that still has room
    when its turn comes (higher scores are served first)."""
    n, k = scores.shape
    if cap * k < n:
        raise ValueError(f"{k} clusters of capacity {cap} cannot hold {n} items")
    assign = np.full(n, -1, dtype=np.int64)
    load = np.zeros(k, dtype=np.int64)
    pending = np.arange(n)
    closed = np.zeros(k, dtype=bool)
    while pending.size:
        if closed.any():
            sub = scores[pending]
            sub[:, closed] = -np.inf
        else:  # only the first round has no full cluster: read the caller's matrix uncopied
            sub = scores
        choice = sub.argmax(axis=1)
        best = sub[np.arange(len(pending)), choice]
        order = np.lexsort((-best, choice))
        chosen = choice[order]
        first_of_group = np.searchsorted(chosen, chosen, side="left")
        rank = np.arange(len(order)) - first_of_group
        accept = rank < (cap - load[chosen])
        assign[pending[order[accept]]] = chosen[accept]
        load += np.bincount(chosen[accept], minlength=k)
        closed = load >= cap
        pending = pending[order[~accept]]
    return assign


@dataclass
class LayerFit:
    """Centroids of one layer and the balanced assignment of the basepool they were fitted on."""

    centroids: np.ndarray
    assign: np.ndarray
    iterations: int


def fit_layer(
    x: np.ndarray,
    k: int,
    geometry: Geometry,
    *,
    iters: int,
    init_iters: int,
    seed: int,
    balanced: bool,
    slack: float,
) -> LayerFit:
    """Fit ``k`` centroids to ``x``: faiss k-means, then Lloyd rounds whose assignment step is
    capacity-constrained when ``balanced`` (plain argmax otherwise)."""
    centroids = geometry.init(x, k, seed, init_iters)
    cap = capacity(len(x), k, slack)
    assign = np.full(len(x), -1, dtype=np.int64)
    done = 0
    for done in range(1, iters + 1):
        scores = geometry.scores(x, centroids)
        new = capacity_assign(scores, cap) if balanced else scores.argmax(axis=1)
        served = scores[np.arange(len(x)), new]
        del scores
        changed = int((new != assign).sum())
        assign = new
        centroids = geometry.update(x, assign, centroids)
        _reseed_dead(x, assign, centroids, served, geometry)
        if changed == 0:
            break
    return LayerFit(centroids=centroids, assign=assign, iterations=done)


def _reseed_dead(
    x: np.ndarray, assign: np.ndarray, centroids: np.ndarray, served: np.ndarray, geometry: Geometry
) -> None:
    # A cluster nobody chose (or whose weighted sum cancelled to zero) wastes a code; restarting
    # it on the worst-served items gives it the part of the data the others represent worst.
    counts = np.bincount(assign, minlength=len(centroids))
    dead = np.flatnonzero((counts == 0) | ~np.any(centroids, axis=1))
    if dead.size == 0:
        return
    worst = np.argsort(served, kind="stable")[: dead.size]
    centroids[dead] = geometry.from_points(x[worst])
