"""Measures of a whole top-K list, beyond the rank of one next item.

* **Window recall@K** -- of the w items a user consumed next (the split's ``test_window``), the
  share the top-K holds: ``|top-K ∩ window| / |window|`` (distinct items), averaged over users.
  A single-interest next-item model can win next-item recall and still cover one facet of what
  comes next; this is the multi-interest view.
* **Intra-list diversity@K** -- mean pairwise cosine distance ``1 - cos`` between the top-K items'
  vectors, averaged over users. Measured in one reference space for every model (a text
  embedding export) so that models with different item spaces are compared on the same ruler.
* **Interest coverage@K** -- how many distinct interests the top-K items came from (each item
  counted for the interest that scored it highest), averaged over users; 1 for a one-vector model.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def window_recall(top_items: np.ndarray, windows: np.ndarray, ks: list[int] | tuple[int, ...]) -> dict[str, float]:
    """``{"window_recall@K": ...}`` for every K, from ``[U, >= max K]`` ranked items and
    ``[U, w]`` held-out windows (0 entries are padding)."""
    if len(top_items) != len(windows):
        raise ValueError(f"{len(top_items)} lists but {len(windows)} windows")
    if max(ks) > top_items.shape[1]:
        raise ValueError(f"lists hold {top_items.shape[1]} items, fewer than K = {max(ks)}")
    out = {}
    for k in ks:
        shares = [len(set(top[:k]) & set(w[w > 0])) / len(set(w[w > 0])) for top, w in zip(top_items, windows)]
        out[f"window_recall@{k}"] = float(np.mean(shares)) if shares else 0.0
    return out


def intra_list_diversity(top_items: np.ndarray, vectors: torch.Tensor) -> float:
    """Mean over users of the mean pairwise cosine distance between the listed items' vectors
    (``vectors`` ``[N+1, D]``, row 0 padding)."""
    if top_items.shape[1] < 2:
        raise ValueError("diversity needs lists of at least 2 items")
    if not torch.isfinite(vectors).all():
        raise ValueError("the reference item vectors contain NaN or inf")
    unit = F.normalize(vectors.float(), dim=-1)[torch.from_numpy(top_items)]
    cos = unit @ unit.transpose(1, 2)
    k = top_items.shape[1]
    pairs = (cos.sum((1, 2)) - cos.diagonal(dim1=1, dim2=2).sum(1)) / (k * (k - 1))
    return float((1 - pairs).mean()) if len(top_items) else 0.0


def interest_coverage(interests: np.ndarray) -> float:
    """Mean over users of the number of distinct interests among a list's items."""
    return float(np.mean([len(np.unique(row)) for row in interests])) if len(interests) else 0.0
