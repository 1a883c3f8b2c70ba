"""The one evaluator every model is measured with: full ranking over all items.

Models hand it vectors, not scores: one user vector ``[U, D]`` or several interest vectors
``[U, K, D]`` per user, and candidate item vectors ``[n_items + 1, D]`` (row 0 = padding, never
ranked). An item's score is the dot product with the user vector, or the maximum over interests
(equivalent to ComiRec's pool-sort-dedup merge). Cosine models pass L2-normalised vectors.
Scoring runs in user batches so that a catalogue of any size is never materialised for all users
at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from hymirec.evaluation.metrics import DEFAULT_KS, metrics_from_ranks


@dataclass
class EvaluationResult:
    """Metrics (fractions) and the per-user rank of each target."""

    metrics: dict
    ranks: np.ndarray


@dataclass
class TopK:
    """Each user's best items ``[U, k]`` (best first) and the interest each came from ``[U, k]``
    (0 for a model with one vector per user)."""

    items: np.ndarray
    interests: np.ndarray


def target_ranks(
    scores: torch.Tensor,
    targets: torch.Tensor,
    history: list[np.ndarray] | None,
) -> torch.Tensor:
    """Rank of each row's target among columns 1..N of ``scores`` ``[B, N+1]``.

    ``history`` (one array of item ids per row) is masked out before ranking, except the target
    itself should a user consume it again. ``scores`` is modified in place.
    """
    if torch.isnan(scores).any():
        raise ValueError("scores contain NaN: the model produced invalid vectors")
    rows = torch.arange(len(targets))
    scores[:, 0] = -torch.inf
    target_scores = scores[rows, targets].clone()
    if history is not None:
        lens = [len(h) for h in history]
        if sum(lens):
            row_idx = torch.repeat_interleave(rows, torch.tensor(lens))
            col_idx = torch.from_numpy(np.concatenate(history)).long()
            scores[row_idx, col_idx] = -torch.inf
        # A target the user consumed before stays rankable; only *other* seen items are masked.
        scores[rows, targets] = target_scores
    return (scores >= target_scores.unsqueeze(1)).sum(dim=1)


class Evaluator:
    """Full-ranking evaluation with the user's history masked (or not, RecBole's convention)."""

    def __init__(
        self,
        ks: tuple[int, ...] | list[int] = DEFAULT_KS,
        mask_history: bool = True,
        batch_size: int = 1024,
    ) -> None:
        if not ks or any(k < 1 for k in ks):
            raise ValueError(f"ks must be positive cut-offs, got {ks!r}")
        self.ks = tuple(ks)
        self.mask_history = mask_history
        self.batch_size = batch_size

    def _check(self, user_vectors: torch.Tensor, item_vectors: torch.Tensor, histories: list[np.ndarray]) -> torch.Tensor:
        user_vectors = torch.as_tensor(user_vectors)
        if user_vectors.dim() == 2:
            user_vectors = user_vectors.unsqueeze(1)
        if user_vectors.dim() != 3:
            raise ValueError(f"user vectors must be [U, D] or [U, K, D], got {tuple(user_vectors.shape)}")
        if len(histories) != len(user_vectors):
            raise ValueError(f"{len(user_vectors)} user vectors but {len(histories)} histories")
        if user_vectors.shape[-1] != item_vectors.shape[-1]:
            raise ValueError(
                f"user vectors have dimension {user_vectors.shape[-1]}, items {item_vectors.shape[-1]}"
            )
        if not torch.isfinite(item_vectors).all() or not torch.isfinite(user_vectors).all():
            raise ValueError("user or item vectors contain NaN or inf")
        return user_vectors

    def _scores(self, user_vectors: torch.Tensor, item_vectors: torch.Tensor):
        """``(lo, hi, scores [b, N+1], best interest [b, N+1])`` per batch of users."""
        items_t = item_vectors.T.float()
        for lo in range(0, len(user_vectors), self.batch_size):
            hi = min(lo + self.batch_size, len(user_vectors))
            # [b, K, D] @ [D, N+1] -> [b, K, N+1], then max over interests.
            scores, interest = (user_vectors[lo:hi].float() @ items_t).max(dim=1)
            yield lo, hi, scores, interest

    def evaluate(
        self,
        user_vectors: torch.Tensor,
        item_vectors: torch.Tensor,
        targets: np.ndarray | torch.Tensor,
        histories: list[np.ndarray],
    ) -> EvaluationResult:
        """Rank every item for every user; ``histories[i]`` are the items user ``i`` has seen."""
        targets = torch.as_tensor(np.asarray(targets), dtype=torch.long)
        if len(targets) != len(user_vectors):
            raise ValueError(f"{len(user_vectors)} user vectors but {len(targets)} targets")
        user_vectors = self._check(user_vectors, item_vectors, histories)
        n_users, n_candidates = len(user_vectors), item_vectors.shape[0]
        if n_users and (targets.min() < 1 or targets.max() >= n_candidates):
            raise ValueError(f"targets must be item ids in 1..{n_candidates - 1}")
        ranks = []
        with torch.no_grad():
            for lo, hi, scores, _ in self._scores(user_vectors, item_vectors):
                batch_hist = histories[lo:hi] if self.mask_history else None
                ranks.append(target_ranks(scores, targets[lo:hi], batch_hist))
        ranks_np = torch.cat(ranks).numpy() if ranks else np.zeros(0, np.int64)
        return EvaluationResult(metrics=metrics_from_ranks(ranks_np, self.ks), ranks=ranks_np)

    def top_k(
        self,
        user_vectors: torch.Tensor,
        item_vectors: torch.Tensor,
        histories: list[np.ndarray],
        k: int,
        keep: np.ndarray | None = None,
    ) -> TopK:
        """Each user's ``k`` best items and the interest each came from, the history masked as in
        ``evaluate`` (items in ``keep[i]``, the held-out targets, stay rankable)."""
        user_vectors = self._check(user_vectors, item_vectors, histories)
        if not 1 <= k < item_vectors.shape[0]:
            raise ValueError(f"k must be in 1..{item_vectors.shape[0] - 1}, got {k}")
        items, interests = [], []
        with torch.no_grad():
            for lo, hi, scores, interest in self._scores(user_vectors, item_vectors):
                scores[:, 0] = -torch.inf
                if self.mask_history:
                    for row, seen in enumerate(histories[lo:hi]):
                        if keep is not None:
                            seen = seen[~np.isin(seen, keep[lo + row])]
                        scores[row, torch.from_numpy(np.asarray(seen, dtype=np.int64))] = -torch.inf
                best = scores.topk(k, dim=1).indices
                items.append(best)
                interests.append(interest.gather(1, best))
        if not items:
            return TopK(np.zeros((0, k), np.int64), np.zeros((0, k), np.int64))
        return TopK(torch.cat(items).numpy(), torch.cat(interests).numpy())
