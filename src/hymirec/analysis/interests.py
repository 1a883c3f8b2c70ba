"""Do learned interests align with known latent interests? Purity, alignment, coverage, distinct.

For every user ``u`` and learned interest ``j`` (a vector of ``interests[u, j]``, ``[U, s, D]``),
the interest's **top-k items** are the ``k`` catalogue items (ids ``1..N``; row 0 of the item
table is padding and never counted) with the highest cosine similarity to the interest vector
(ties broken towards the lower item id). With each item's true cluster (``item_clusters[i]``):

* **alignment** ``[U, s]``: the interest's *majority cluster*, the cluster that the most of its
  top-k items belong to (ties: the smallest cluster id);
* **purity** ``[U, s]``: the share of the interest's top-k items that belong to its majority
  cluster (``1/k`` .. ``1``; ``1`` = all ``k`` items from one cluster);
* **coverage** ``[U]``: the share of the user's true interests (a set of cluster ids) that are the
  majority cluster of at least one of the user's ``s`` learned interests;
* **distinct** ``[U]``: how many different majority clusters the user's ``s`` interests have
  (``1`` .. ``s``; ``1`` = every interest points at the same cluster);
* **on_target** ``[U]``: the share of the user's ``s`` learned interests whose majority cluster is
  one of the user's true interests;
* **coverage_bound** ``[U]``: the most coverage ``s`` interests can reach,
  ``min(s, t) / t`` for a user with ``t`` true interests (``1`` when ``s >= t``; a single interest
  can cover at most ``1 / t``).

Everything is computed in torch on the inputs' device (in chunks of users) and returned as CPU
numpy arrays, so vectors straight from a CUDA model work as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

ArrayLike = torch.Tensor | np.ndarray
_SCORES_PER_BLOCK = 1 << 24


@dataclass(frozen=True)
class InterestAnalysis:
    """Per-user, per-interest results of ``analyse_interests`` (CPU numpy arrays; see the module
    docstring for the definitions). ``k`` is the number of top items each interest was read by."""

    k: int
    alignment: np.ndarray  # [U, s] int64
    purity: np.ndarray  # [U, s] float64
    coverage: np.ndarray  # [U] float64
    distinct: np.ndarray  # [U] int64
    on_target: np.ndarray  # [U] float64
    coverage_bound: np.ndarray  # [U] float64

    def summary(self) -> dict[str, float]:
        """Means over users (and, for purity, over interests) of each measure."""
        return {
            "purity": float(self.purity.mean()),
            "coverage": float(self.coverage.mean()),
            "distinct": float(self.distinct.mean()),
            "on_target": float(self.on_target.mean()),
            "coverage_bound": float(self.coverage_bound.mean()),
        }


def _tensor(x: ArrayLike, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        return torch.from_numpy(x)
    if isinstance(x, torch.Tensor):
        return x
    raise TypeError(f"{name} must be a torch tensor or numpy array, got {type(x).__name__}")


def _check_vectors(interests: torch.Tensor, items: torch.Tensor) -> None:
    if interests.dim() != 3:
        raise ValueError(f"interests must be [U, s, D], got shape {tuple(interests.shape)}")
    if items.dim() != 2:
        raise ValueError(f"items must be [N + 1, D] (row 0 padding), got shape {tuple(items.shape)}")
    if interests.shape[-1] != items.shape[-1]:
        raise ValueError(f"interests have dimension {interests.shape[-1]} but items have {items.shape[-1]}")
    if items.shape[0] < 2:
        raise ValueError("items must hold the padding row and at least one item")
    if not interests.is_floating_point() or not items.is_floating_point():
        raise ValueError("interests and items must be floating-point vectors")
    if not torch.isfinite(interests).all():
        raise ValueError("interest vectors contain NaN or inf")
    if not torch.isfinite(items[1:]).all():
        raise ValueError("item vectors contain NaN or inf")
    if interests.numel() and (interests.norm(dim=-1) == 0).any():
        raise ValueError("an interest vector is all zeros: its cosine to items is undefined")


@torch.no_grad()
def interest_top_items(interests: ArrayLike, items: ArrayLike, k: int, chunk: int | None = None) -> torch.Tensor:
    """``[U, s, k]`` canonical ids (``1..N``) of each interest's ``k`` most cosine-similar items,
    most similar first (padding row 0 excluded), on the inputs' device. Users are scored
    ``chunk`` at a time (``None``: as many as keep one block of scores near 16M values)."""
    interests, items = _tensor(interests, "interests"), _tensor(items, "items")
    _check_vectors(interests, items)
    n_items = items.shape[0] - 1
    if not 1 <= k <= n_items:
        raise ValueError(f"k must be in [1, {n_items}] (the number of items), got {k}")
    items = F.normalize(items[1:].to(interests.device).float(), dim=-1)
    if chunk is None:
        chunk = max(1, _SCORES_PER_BLOCK // max(1, interests.shape[1] * n_items))
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    out = []
    for lo in range(0, interests.shape[0], chunk):
        block = F.normalize(interests[lo : lo + chunk].float(), dim=-1)
        scores = block @ items.T  # [u, s, N]
        # A stable descending sort: equal scores keep the lower item id first.
        order = torch.sort(scores, dim=-1, descending=True, stable=True).indices[..., :k]
        out.append(order + 1)
    if not out:
        return torch.zeros(0, interests.shape[1], k, dtype=torch.long, device=interests.device)
    return torch.cat(out)


@torch.no_grad()
def analyse_interests(
    interests: ArrayLike,
    items: ArrayLike,
    item_clusters: ArrayLike,
    true_interests: Sequence[Sequence[int]],
    k: int = 20,
) -> InterestAnalysis:
    """Purity, alignment, coverage (and its bound), distinct and on-target share of learned interests.

    ``interests``: ``[U, s, D]`` one vector per user and learned interest; ``items``: ``[N + 1, D]``
    the catalogue's vectors in the same space (row 0 padding, ignored); ``item_clusters``:
    ``[N + 1]`` each item's true cluster id (>= 0; row 0 ignored); ``true_interests``: per user,
    the cluster ids of its true interests (at least one each); ``k``: how many top items by cosine
    characterise an interest. Definitions in the module docstring. Raises ``ValueError`` for
    shapes that do not fit together, NaN / inf vectors, all-zero interest vectors, negative
    cluster ids or users without true interests.
    """
    interests_t, items_t = _tensor(interests, "interests"), _tensor(items, "items")
    clusters = _tensor(item_clusters, "item_clusters")
    _check_vectors(interests_t, items_t)
    if clusters.dim() != 1 or clusters.shape[0] != items_t.shape[0]:
        raise ValueError(f"item_clusters must be [N + 1] = [{items_t.shape[0]}], got shape {tuple(clusters.shape)}")
    if clusters.is_floating_point() or clusters.dtype == torch.bool:
        raise ValueError("item_clusters must hold integer cluster ids")
    clusters = clusters.long()
    if (clusters[1:] < 0).any():
        raise ValueError("item_clusters must be >= 0 for every item (row 0, padding, is ignored)")
    n_users, s = interests_t.shape[:2]
    if len(true_interests) != n_users:
        raise ValueError(f"{len(true_interests)} users' true interests for {n_users} users' interest vectors")
    for u, truth in enumerate(true_interests):
        if len(truth) == 0:
            raise ValueError(f"user {u} (row) has no true interests")

    top = interest_top_items(interests_t, items_t, k)  # [U, s, k]
    n_clusters = int(clusters[1:].max()) + 1
    top_clusters = clusters.to(top.device)[top]  # [U, s, k]
    counts = F.one_hot(top_clusters, n_clusters).sum(dim=2)  # [U, s, C]
    # argmax returns the first maximum: ties go to the smallest cluster id.
    best, alignment = counts.max(dim=-1)
    purity = (best.double() / k).cpu().numpy()
    alignment = alignment.cpu().numpy().astype(np.int64)

    coverage = np.empty(n_users)
    on_target = np.empty(n_users)
    distinct = np.empty(n_users, dtype=np.int64)
    bound = np.empty(n_users)
    for u in range(n_users):
        truth = {int(c) for c in np.asarray(true_interests[u]).ravel()}
        found = set(alignment[u].tolist())
        coverage[u] = len(truth & found) / len(truth)
        on_target[u] = float(np.isin(alignment[u], list(truth)).mean()) if s else 0.0
        distinct[u] = len(found)
        bound[u] = min(s, len(truth)) / len(truth)
    return InterestAnalysis(k=k, alignment=alignment, purity=purity, coverage=coverage,
                            distinct=distinct, on_target=on_target, coverage_bound=bound)
