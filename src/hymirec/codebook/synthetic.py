"""Clustered synthetic item embeddings: structure a codebook can exploit, unlike uniform noise."""

from __future__ import annotations

import numpy as np


def clustered_embeddings(
    n: int,
    dim: int,
    *,
    n_topics: int = 64,
    clusters_per_topic: int = 16,
    rank: int = 8,
    topic_spread: float = 0.8,
    cluster_spread: float = 0.7,
    noise: float = 0.15,
    seed: int = 0,
    sample_seed: int | None = None,
) -> np.ndarray:
    """``[n, dim]`` unit-norm float32 vectors from a two-level mixture, as text embeddings look:
    topics (random directions), clusters around each topic, and within a cluster a few dominant
    directions (a random ``rank``-dim subspace) plus isotropic noise. Cluster popularity follows
    a Zipf-like law so that cluster sizes are unequal, as item catalogues are. Every spread is
    the expected norm of that component relative to the unit-norm topic direction.

    ``seed`` fixes the mixture, ``sample_seed`` (default: ``seed``) the items drawn from it, so
    two calls with the same ``seed`` and different ``sample_seed`` give new items of the same
    catalogue."""
    structure = np.random.default_rng(seed)
    n_clusters = n_topics * clusters_per_topic
    topics = _unit(structure.standard_normal((n_topics, dim)))
    offsets = _unit(structure.standard_normal((n_clusters, dim))) * topic_spread
    centres = _unit(np.repeat(topics, clusters_per_topic, axis=0) + offsets)
    popularity = structure.permutation(1.0 / (np.arange(n_clusters) + 10.0) ** 0.8)
    spectrum = cluster_spread * np.sqrt(2.0 / np.arange(1, rank + 1)) / np.sqrt(rank)
    rng = np.random.default_rng(seed if sample_seed is None else sample_seed)
    members = rng.multinomial(n, popularity / popularity.sum())
    out = np.empty((n, dim), dtype=np.float32)
    start = 0
    for cluster in np.flatnonzero(members):
        count = members[cluster]
        # each cluster's subspace comes from its own stream, so it is the same whatever n is
        basis = np.linalg.qr(np.random.default_rng([seed, cluster]).standard_normal((dim, rank)))[0]
        within = (rng.standard_normal((count, rank)) * spectrum) @ basis.T
        iso = rng.standard_normal((count, dim)) * (noise / np.sqrt(dim))
        out[start : start + count] = centres[cluster] + within + iso
        start += count
    out = out[rng.permutation(n)]
    return _unit(out).astype(np.float32, copy=False)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)
