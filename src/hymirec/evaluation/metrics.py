"""Ranking metrics for one held-out target per user.

The rank of the target is ``1 + (number of other candidate items scoring at least as high)``:
ties count against the model, so a model that scores everything equally gets the worst rank, not
the best. With a single relevant item, Recall@K equals HR@K and NDCG@K is ``1 / log2(rank + 1)``
when ``rank <= K`` (the ideal DCG is 1).
"""

from __future__ import annotations

import numpy as np

DEFAULT_KS = (10, 50, 100, 200)


def recall_at_k(ranks: np.ndarray, k: int) -> float:
    """Fraction of users whose target is ranked within the top ``k``."""
    return float(np.mean(ranks <= k)) if len(ranks) else 0.0


def ndcg_at_k(ranks: np.ndarray, k: int) -> float:
    """Mean NDCG@k with one relevant item per user."""
    if not len(ranks):
        return 0.0
    gains = np.where(ranks <= k, 1.0 / np.log2(ranks.astype(np.float64) + 1.0), 0.0)
    return float(np.mean(gains))


def metrics_from_ranks(ranks: np.ndarray, ks: tuple[int, ...] | list[int] = DEFAULT_KS) -> dict:
    """``{"recall@K": ..., "ndcg@K": ...}`` for every K, as fractions."""
    ranks = np.asarray(ranks)
    out = {}
    for k in ks:
        out[f"recall@{k}"] = recall_at_k(ranks, k)
    for k in ks:
        out[f"ndcg@{k}"] = ndcg_at_k(ranks, k)
    return out


def metrics_by_history_length(
    ranks: np.ndarray, lengths: np.ndarray, edges: list[int] | tuple[int, ...],
    ks: tuple[int, ...] | list[int] = DEFAULT_KS,
) -> list[dict]:
    """The metrics of ``ranks`` over groups of users by their history's length: ``edges`` are the
    groups' inclusive upper ends (increasing), and a last group holds the longer histories. One
    ``{"history": "lo-hi" | "lo+", "users": n, **metrics}`` per non-empty group, shortest first,
    so that what a model gains from a long history is read where histories are long."""
    ranks, lengths = np.asarray(ranks), np.asarray(lengths)
    if len(ranks) != len(lengths):
        raise ValueError(f"{len(ranks)} ranks but {len(lengths)} history lengths")
    groups, lo = [], 0
    for hi in [*edges, None]:
        inside = (lengths > lo) if hi is None else (lengths > lo) & (lengths <= hi)
        if inside.any():
            label = f"{lo + 1}+" if hi is None else f"{lo + 1}-{hi}"
            groups.append({"history": label, "users": int(inside.sum()), **metrics_from_ranks(ranks[inside], ks)})
        lo = hi
    return groups

