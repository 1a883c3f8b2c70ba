"""Chronological user sequences and the leave-one-out split shared by every model.

Per user, interactions are sorted by timestamp with a *stable* sort, so equal timestamps keep the
order of the source file (RecBole's convention; MovieLens-100K has 75,772 interactions that share
a user and a timestamp). For a user with sequence ``s`` of length ``n >= 3``:

* training uses ``s[:-2]`` only (every next-item target inside it),
* validation predicts ``s[-2]`` from ``s[:-2]``,
* test predicts ``s[-1]`` from ``s[:-1]``.

Users with fewer than 3 interactions cannot give a validation *and* a test target; their whole
sequence is used for training and they are not evaluated. Nothing a model is trained on can come
from a validation or test position of an evaluated user.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from hymirec.data.dataset import InteractionDataset

MIN_EVAL_LENGTH = 3
Stage = Literal["valid", "test"]


@dataclass(frozen=True)
class UserSequences:
    """All users' chronological sequences in CSR form: user ``u`` (1-based) owns
    ``items[offsets[u-1]:offsets[u]]`` and the matching ``timestamps``."""

    items: np.ndarray
    timestamps: np.ndarray
    offsets: np.ndarray

    @property
    def n_users(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def user(self, u: int) -> tuple[np.ndarray, np.ndarray]:
        """Items and timestamps of user ``u`` (1-based canonical id)."""
        lo, hi = self.offsets[u - 1], self.offsets[u]
        return self.items[lo:hi], self.timestamps[lo:hi]


def build_sequences(dataset: InteractionDataset) -> UserSequences:
    """Sort interactions per user by time, keeping source order among equal timestamps."""
    inter = dataset.interactions
    users = inter["user"].to_numpy(np.int64)
    times = inter["timestamp"].to_numpy(np.int64)
    # np.lexsort is stable: ties in (user, timestamp) keep their row (= source file) order.
    order = np.lexsort((times, users))
    counts = np.bincount(users, minlength=dataset.n_users + 1)[1:]
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return UserSequences(
        items=inter["item"].to_numpy(np.int64)[order],
        timestamps=times[order],
        offsets=offsets,
    )


@dataclass(frozen=True)
class EvalExamples:
    """One evaluation target per user: the history before it, in CSR form."""

    users: np.ndarray
    targets: np.ndarray
    history_items: np.ndarray
    history_timestamps: np.ndarray
    history_offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.users)

    def history(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self.history_offsets[i], self.history_offsets[i + 1]
        return self.history_items[lo:hi], self.history_timestamps[lo:hi]


class LeaveOneOutSplit:
    """The leave-one-out split of a dataset (see the module docstring for the rule)."""

    def __init__(self, dataset: InteractionDataset) -> None:
        self.dataset = dataset
        self.n_items = dataset.n_items
        self.sequences = build_sequences(dataset)
        self.eval_users = np.flatnonzero(self.sequences.lengths >= MIN_EVAL_LENGTH) + 1

    def train_sequences(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per user, the part of the sequence a model may learn from (items, timestamps)."""
        out = []
        for u, n in enumerate(self.sequences.lengths, start=1):
            items, times = self.sequences.user(u)
            keep = n - 2 if n >= MIN_EVAL_LENGTH else n
            out.append((items[:keep], times[:keep]))
        return out

    def examples(self, stage: Stage) -> EvalExamples:
        """Validation (``s[-2]`` from ``s[:-2]``) or test (``s[-1]`` from ``s[:-1]``) examples."""
        if stage not in ("valid", "test"):
            raise ValueError(f"stage must be 'valid' or 'test', got {stage!r}")
        held_out = 2 if stage == "valid" else 1
        starts = self.sequences.offsets[self.eval_users - 1]
        ends = self.sequences.offsets[self.eval_users] - held_out
        targets = self.sequences.items[ends]
        lengths = ends - starts
        index = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends)]) if len(starts) else (
            np.zeros(0, np.int64)
        )
        return EvalExamples(
            users=self.eval_users.copy(),
            targets=targets,
            history_items=self.sequences.items[index],
            history_timestamps=self.sequences.timestamps[index],
            history_offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        )
