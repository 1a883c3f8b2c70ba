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


MERGES = ("max", "round_robin")


@dataclass
class TopK:
    """Each user's list ``[U, k]`` (first = best), the interest each item came from (0 for a model
    with one vector per user) and the score it was listed with."""

    items: np.ndarray
    interests: np.ndarray
    scores: np.ndarray


def mask_seen(scores: torch.Tensor, history: list[np.ndarray]) -> None:
    """Set ``scores[i, ..., item]`` to -inf for every item in ``history[i]`` (in place), for
    ``[B, N+1]`` scores or every interest's ``[B, K, N+1]``."""
    lens = [len(h) for h in history]
    if sum(lens):
        rows = torch.repeat_interleave(torch.arange(len(history)), torch.tensor(lens))
        cols = torch.from_numpy(np.concatenate(history).astype(np.int64))
        scores[rows, ..., cols] = -torch.inf


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
        mask_seen(scores, history)
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

    def _interest_scores(self, user_vectors: torch.Tensor, item_vectors: torch.Tensor):
        """``(lo, hi, scores [b, K, N+1])``: every interest's score of every item, per batch of users."""
        items_t = item_vectors.T.float()
        for lo in range(0, len(user_vectors), self.batch_size):
            hi = min(lo + self.batch_size, len(user_vectors))
            # float32 even under a bf16 autocast, which would return its product in bf16.
            yield lo, hi, (user_vectors[lo:hi].float() @ items_t).float()

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
            for lo, hi, scores in self._interest_scores(user_vectors, item_vectors):
                batch_hist = histories[lo:hi] if self.mask_history else None
                # An item's score is its best interest's (ComiRec's pool-sort-dedup merge).
                ranks.append(target_ranks(scores.amax(dim=1), targets[lo:hi], batch_hist))
        ranks_np = torch.cat(ranks).numpy() if ranks else np.zeros(0, np.int64)
        return EvaluationResult(metrics=metrics_from_ranks(ranks_np, self.ks), ranks=ranks_np)

    def top_k(
        self,
        user_vectors: torch.Tensor,
        item_vectors: torch.Tensor,
        histories: list[np.ndarray],
        k: int,
        keep: np.ndarray | None = None,
        merge: str = "max",
    ) -> TopK:
        """Each user's ``k`` best items, their scores and the interest each came from, the history
        masked as in ``evaluate`` (items in ``keep[i]``, the held-out targets, stay rankable).

        ``merge`` makes one list of several interests: ``max`` ranks every item by its best
        interest (what ``evaluate`` ranks by); ``round_robin`` takes each interest's best item in
        turn -- round r holds every interest's r-th best, strongest first -- skipping items already
        listed, so that every interest places items in the list (MIND/ComiRec-style retrieval of
        k per interest, merged)."""
        if merge not in MERGES:
            raise ValueError(f"merge must be one of {MERGES}, got {merge!r}")
        user_vectors = self._check(user_vectors, item_vectors, histories)
        if not 1 <= k < item_vectors.shape[0]:
            raise ValueError(f"k must be in 1..{item_vectors.shape[0] - 1}, got {k}")
        parts = []
        with torch.no_grad():
            for lo, hi, scores in self._interest_scores(user_vectors, item_vectors):
                scores[:, :, 0] = -torch.inf
                if self.mask_history:
                    seen = histories[lo:hi]
                    if keep is not None:
                        seen = [h[~np.isin(h, held)] for h, held in zip(seen, keep[lo:hi])]
                    mask_seen(scores, seen)
                parts.append(_round_robin(scores, k) if merge == "round_robin" else _best_interest(scores, k))
        if not parts:
            empty = np.zeros((0, k), np.int64)
            return TopK(empty, empty, np.zeros((0, k), np.float32))
        return TopK(*(np.concatenate([part[i] for part in parts]) for i in range(3)))


def _best_interest(scores: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    best, interest = scores.max(dim=1)
    values, items = best.topk(k, dim=1)
    return items.numpy(), interest.gather(1, items).numpy(), values.numpy()


def _round_robin(scores: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    values, items = scores.topk(k, dim=2)  # [b, K, k]: each interest's k best
    order = values.argsort(dim=1, descending=True)  # within a round, the strongest interest first
    # Round-major: round r holds the interests' r-th best items, in ``order``.
    rounds = [t.transpose(1, 2).flatten(1).numpy() for t in (items.gather(1, order), order, values.gather(1, order))]
    out = [np.empty((len(scores), k), a.dtype) for a in rounds]
    for row in range(len(scores)):
        _, first = np.unique(rounds[0][row], return_index=True)
        keep = np.sort(first)[:k]  # each item where it first appears; K interests x k items hold >= k distinct
        for o, r in zip(out, rounds):
            o[row] = r[row, keep]
    return tuple(out)
