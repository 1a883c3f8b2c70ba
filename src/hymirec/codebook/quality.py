"""How faithful reconstructed embeddings are: reconstruction cosine and neighbour recall@k."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from hymirec.codebook.codebook import EncodedItems


def reconstruction_cosine(original: np.ndarray, reconstructed: np.ndarray) -> np.ndarray:
    """Row-wise cosine between original and reconstructed vectors."""
    num = np.einsum("ij,ij->i", original, reconstructed)
    den = np.linalg.norm(original, axis=1) * np.linalg.norm(reconstructed, axis=1)
    return num / np.maximum(den, 1e-30)


def blocks(array: np.ndarray, size: int = 65_536) -> Iterator[tuple[int, np.ndarray]]:
    """``(start, float32 block)`` over the rows of ``array`` (which may be memory-mapped)."""
    for start in range(0, len(array), size):
        yield start, np.asarray(array[start : start + size], dtype=np.float32)


def top_k_cosine(
    queries: np.ndarray,
    database: Iterable[tuple[int, np.ndarray]],
    k: int,
    exclude: np.ndarray | None = None,
) -> np.ndarray:
    """Row ids of the ``k`` database vectors most cosine-similar to each query, best first.

    ``database`` yields ``(start row, block)`` so that a reconstructed database never has to
    exist in memory at once; ``exclude[i]`` is a row id never returned for query ``i`` (the
    query itself when queries are drawn from the database)."""
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    best_score = np.full((len(q), k), -np.inf, dtype=np.float32)
    best_id = np.full((len(q), k), -1, dtype=np.int64)
    for start, block in database:
        norms = np.linalg.norm(block, axis=1)
        sims = (q @ block.T) / np.maximum(norms, 1e-30)[None, :]
        ids = np.arange(start, start + len(block))
        if exclude is not None:
            inside = (exclude >= start) & (exclude < start + len(block))
            sims[np.flatnonzero(inside), exclude[inside] - start] = -np.inf
        scores = np.concatenate([best_score, sims], axis=1)
        every_id = np.concatenate([best_id, np.broadcast_to(ids, sims.shape)], axis=1)
        keep = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        best_score = np.take_along_axis(scores, keep, axis=1)
        best_id = np.take_along_axis(every_id, keep, axis=1)
    order = np.argsort(-best_score, axis=1, kind="stable")
    return np.take_along_axis(best_id, order, axis=1)


def neighbour_recall(truth: np.ndarray, found: np.ndarray) -> float:
    """Mean over queries of |truth_i & found_i| / k, for two ``[queries, k]`` id arrays."""
    k = truth.shape[1]
    hits = [len(np.intersect1d(t, f, assume_unique=True)) for t, f in zip(truth, found)]
    return float(np.mean(hits) / k)


def decoded_blocks(
    decode: Callable[[int, int], np.ndarray], n: int, size: int = 65_536
) -> Iterator[tuple[int, np.ndarray]]:
    """``(start, decode(start, stop))`` over ``n`` items, for ``top_k_cosine``."""
    for start in range(0, n, size):
        yield start, decode(start, min(start + size, n))


@dataclass
class LayerQuality:
    """Quality of a codebook on a set of items, measured after each layer."""

    n_items: int
    reconstruction_cosine: list[float] | None  # mean cos(e, decode of layers 1..l), per l
    code_sizes: list[list[int]]  # how many items took each centroid, per layer


def summarise(encoded: EncodedItems, ks: list[int]) -> LayerQuality:
    """Per-layer mean reconstruction cosine and code counts of ``encode_with_quality`` output."""
    return LayerQuality(
        n_items=len(encoded.codes),
        reconstruction_cosine=encoded.cosines.mean(axis=0).astype(float).tolist(),
        code_sizes=[
            np.bincount(encoded.codes[:, i], minlength=k).tolist() for i, k in enumerate(ks)
        ],
    )


def balance(sizes: list[int] | np.ndarray) -> dict[str, float]:
    """How evenly items spread over clusters: largest and smallest cluster relative to the mean,
    empty clusters, and the entropy of the cluster distribution over its maximum ``log k``
    (1.0 = perfectly even)."""
    sizes = np.asarray(sizes, dtype=np.float64)
    mean = sizes.mean()
    p = sizes[sizes > 0] / sizes.sum()
    return {
        "max_over_mean": float(sizes.max() / mean),
        "min_over_mean": float(sizes.min() / mean),
        "empty": int((sizes == 0).sum()),
        "entropy_ratio": float(-(p * np.log(p)).sum() / np.log(len(sizes))),
    }
