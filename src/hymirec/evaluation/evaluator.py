"""The one evaluator every model is measured with: full ranking over all items.

Models hand it vectors, not scores: one user vector ``[U, D]`` or several interest vectors
``[U, K, D]`` per user, and candidate item vectors ``[n_items + 1, D]`` (row 0 = padding, never
ranked). An item's score is the dot product with the user vector, or the maximum over interests
(equivalent to ComiRec's pool-sort-dedup merge). Cosine models pass L2-normalised vectors.
Scoring runs in user batches and item chunks, so that memory does not grow with the number of users
times the number of items (``Evaluator``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from hymirec.evaluation.metrics import DEFAULT_KS, metrics_from_ranks

if TYPE_CHECKING:
    from hymirec.evaluation.config import EvalConfig


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


class _Seen:
    """One user batch's items to mask, as (row, item) pairs, cut to any chunk of item columns."""

    def __init__(self, history: list[np.ndarray] | None) -> None:
        self.rows = self.items = None
        if history is not None and sum(len(h) for h in history):
            lens = torch.tensor([len(h) for h in history])
            self.rows = torch.repeat_interleave(torch.arange(len(history)), lens)
            self.items = torch.from_numpy(np.concatenate(history).astype(np.int64))

    def mask(self, scores: torch.Tensor, lo: int) -> None:
        """Set ``scores[row, ..., item - lo]`` to -inf for the pairs whose item is one of the
        chunk's columns ``lo .. lo + width - 1`` (in place; ``[b, width]`` or ``[b, K, width]``)."""
        if self.rows is None:
            return
        inside = (self.items >= lo) & (self.items < lo + scores.shape[-1])
        scores[self.rows[inside], ..., self.items[inside] - lo] = -torch.inf


class Evaluator:
    """Full-ranking evaluation with the user's history masked (or not, RecBole's convention).

    Users are scored ``batch_size`` at a time against ``item_chunk`` items at a time, so memory
    holds ``batch_size x interests x item_chunk`` scores whatever the catalogue's size (never a
    users x items matrix): a rank counts, chunk by chunk, the items scoring at least the
    target's score, and a top-K list is a running top-K over the chunks. A catalogue within one
    chunk is scored with one product per user batch."""

    def __init__(
        self,
        ks: tuple[int, ...] | list[int] = DEFAULT_KS,
        mask_history: bool = True,
        batch_size: int = 1024,
        item_chunk: int = 16384,
    ) -> None:
        if not ks or any(k < 1 for k in ks):
            raise ValueError(f"ks must be positive cut-offs, got {ks!r}")
        if batch_size < 1 or item_chunk < 1:
            raise ValueError(f"batch_size and item_chunk must be >= 1, got {batch_size} and {item_chunk}")
        self.ks = tuple(ks)
        self.mask_history = mask_history
        self.batch_size = batch_size
        self.item_chunk = item_chunk

    @classmethod
    def from_config(cls, config: EvalConfig, mask_history: bool | None = None) -> Evaluator:
        """The evaluator of an experiment's ``eval`` settings; ``mask_history`` overrides the
        configured masking (the test split is ranked both ways)."""
        masked = config.mask_history if mask_history is None else mask_history
        return cls(config.ks, masked, config.batch_size, config.item_chunk)

    def _check(
        self, user_vectors: torch.Tensor, item_vectors: torch.Tensor, histories: list[np.ndarray]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``([U, K, D] user vectors, float32 item vectors)`` once their shapes and values are valid."""
        user_vectors = torch.as_tensor(user_vectors)
        if user_vectors.dim() == 2:
            user_vectors = user_vectors.unsqueeze(1)
        if user_vectors.dim() != 3:
            raise ValueError(f"user vectors must be [U, D] or [U, K, D], got {tuple(user_vectors.shape)}")
        if len(histories) != len(user_vectors):
            raise ValueError(f"{len(user_vectors)} user vectors but {len(histories)} histories")
        if len(user_vectors) and user_vectors.shape[-1] != item_vectors.shape[-1]:
            raise ValueError(
                f"user vectors have dimension {user_vectors.shape[-1]}, items {item_vectors.shape[-1]}"
            )
        # Chunk by chunk: isfinite of a whole catalogue holds ~1.75x its vectors in temporaries.
        if not all(torch.isfinite(vectors[lo: lo + self.item_chunk]).all()
                   for vectors in (item_vectors, user_vectors) for lo in range(0, len(vectors), self.item_chunk)):
            raise ValueError("user or item vectors contain NaN or inf")
        # float32 once per call: the chunks are scored per user batch.
        return user_vectors, item_vectors.float()

    def _user_batches(self, user_vectors: torch.Tensor):
        """``(lo, hi, users [b, K, D])`` in float32."""
        for lo in range(0, len(user_vectors), self.batch_size):
            hi = min(lo + self.batch_size, len(user_vectors))
            yield lo, hi, user_vectors[lo:hi].float()

    def _chunk_scores(self, users: torch.Tensor, item_vectors: torch.Tensor, lo: int) -> torch.Tensor:
        """Every interest's score of items ``lo .. lo + item_chunk - 1``: ``[b, K, width]``, float32
        even under a bf16 autocast (which would return the product in bf16); item 0 at -inf."""
        scores = (users @ item_vectors[lo: lo + self.item_chunk].T).float()
        if torch.isnan(scores).any():
            raise ValueError("scores contain NaN: the model produced invalid vectors")
        if lo == 0:
            scores[..., 0] = -torch.inf
        return scores

    def _ranks(self, users: torch.Tensor, item_vectors: torch.Tensor, targets: torch.Tensor, seen: _Seen) -> torch.Tensor:
        """1 + the number of other items (not seen, not padding) scoring at least the target's
        score, each item scored by its best interest (ComiRec's pool-sort-dedup merge). Two
        passes over the chunks: the target's score is read from the same product that scores
        the others (a separate dot product may round differently and break exact ties); the
        chunk computed last in the first pass is reused by the second."""
        rows = torch.arange(len(targets))
        target_scores = torch.empty(len(targets))
        kept = (-1, None)
        for lo in (torch.unique(targets // self.item_chunk) * self.item_chunk).tolist():
            kept = (lo, self._chunk_scores(users, item_vectors, lo).amax(dim=1))
            inside = (targets >= lo) & (targets < lo + self.item_chunk)
            target_scores[inside] = kept[1][rows[inside], targets[inside] - lo]
        ranks = torch.ones(len(targets), dtype=torch.long)
        for lo in range(0, len(item_vectors), self.item_chunk):
            scores = kept[1] if kept[0] == lo else self._chunk_scores(users, item_vectors, lo).amax(dim=1)
            seen.mask(scores, lo)
            inside = (targets >= lo) & (targets < lo + scores.shape[1])
            scores[rows[inside], targets[inside] - lo] = -torch.inf  # counted once, in the 1
            ranks += (scores >= target_scores.unsqueeze(1)).sum(dim=1)
        return ranks

    def evaluate(
        self,
        user_vectors: torch.Tensor,
        item_vectors: torch.Tensor,
        targets: np.ndarray | torch.Tensor,
        histories: list[np.ndarray],
    ) -> EvaluationResult:
        """Rank every item for every user; ``histories[i]`` are the items user ``i`` has seen
        (masked when ``mask_history``, except the target itself should a user consume it again)."""
        targets = torch.as_tensor(np.asarray(targets), dtype=torch.long)
        if len(targets) != len(user_vectors):
            raise ValueError(f"{len(user_vectors)} user vectors but {len(targets)} targets")
        user_vectors, item_vectors = self._check(user_vectors, item_vectors, histories)
        n_users, n_candidates = len(user_vectors), item_vectors.shape[0]
        if n_users and (targets.min() < 1 or targets.max() >= n_candidates):
            raise ValueError(f"targets must be item ids in 1..{n_candidates - 1}")
        ranks = []
        with torch.no_grad():
            for lo, hi, users in self._user_batches(user_vectors):
                seen = _Seen(histories[lo:hi] if self.mask_history else None)
                ranks.append(self._ranks(users, item_vectors, targets[lo:hi], seen))
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
        k per interest, merged). Equal scores may be listed in another order when the catalogue
        spans several chunks."""
        if merge not in MERGES:
            raise ValueError(f"merge must be one of {MERGES}, got {merge!r}")
        user_vectors, item_vectors = self._check(user_vectors, item_vectors, histories)
        if not 1 <= k < item_vectors.shape[0]:
            raise ValueError(f"k must be in 1..{item_vectors.shape[0] - 1}, got {k}")
        parts = []
        with torch.no_grad():
            for lo, hi, users in self._user_batches(user_vectors):
                seen = histories[lo:hi] if self.mask_history else None
                if seen is not None and keep is not None:
                    seen = [h[~np.isin(h, held)] for h, held in zip(seen, keep[lo:hi])]
                seen = _Seen(seen)
                if merge == "round_robin":
                    parts.append(_round_robin(*self._running_top_k(users, item_vectors, seen, k, per_interest=True), k))
                else:
                    parts.append(tuple(t.numpy() for t in self._running_top_k(users, item_vectors, seen, k, False)))
        if not parts:
            empty = np.zeros((0, k), np.int64)
            return TopK(empty, empty, np.zeros((0, k), np.float32))
        return TopK(*(np.concatenate([part[i] for part in parts]) for i in range(3)))

    def _running_top_k(
        self, users: torch.Tensor, item_vectors: torch.Tensor, seen: _Seen, k: int, per_interest: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The k best items over every chunk: ``(items, interests, scores)``, each ``[b, k]`` by
        the best interest's score, or ``[b, K, k]`` per interest (then ``interests`` holds each
        row's interest index), best first."""
        best = None
        for lo in range(0, len(item_vectors), self.item_chunk):
            scores = self._chunk_scores(users, item_vectors, lo)
            seen.mask(scores, lo)
            if per_interest:
                values, items = scores.topk(min(k, scores.shape[-1]), dim=-1)
                interests = torch.arange(scores.shape[1]).view(1, -1, 1).expand_as(items)
            else:
                top, interest = scores.max(dim=1)
                values, items = top.topk(min(k, top.shape[-1]), dim=-1)
                interests = interest.gather(1, items)
            found = (items + lo, interests, values)
            if best is not None:
                merged = [torch.cat([b, f], dim=-1) for b, f in zip(best, found)]
                values, order = merged[2].topk(min(k, merged[2].shape[-1]), dim=-1)
                found = (merged[0].gather(-1, order), merged[1].gather(-1, order), values)
            best = found
        return best


def _round_robin(
    items: torch.Tensor, interests: torch.Tensor, values: torch.Tensor, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One list from each interest's k best (``[b, K, k]``, best first), round-major."""
    order = values.argsort(dim=1, descending=True)  # within a round, the strongest interest first
    # Round-major: round r holds the interests' r-th best items, in ``order``.
    rounds = [t.gather(1, order).transpose(1, 2).flatten(1).numpy() for t in (items, interests, values)]
    out = [np.empty((len(items), k), a.dtype) for a in rounds]
    for row in range(len(items)):
        _, first = np.unique(rounds[0][row], return_index=True)
        keep = np.sort(first)[:k]  # each item where it first appears; K interests x k items hold >= k distinct
        for o, r in zip(out, rounds):
            o[row] = r[row, keep]
    return tuple(out)
