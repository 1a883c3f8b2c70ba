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

Two options measure what leave-one-out cannot (both off by default):

* ``test_window = w`` holds out the last ``w`` items: training uses ``s[:-(w+1)]``, validation
  predicts ``s[-(w+1)]`` from it, and test predicts the window ``s[-w:]`` from ``s[:-w]`` (its
  first item is the next-item target; ``EvalExamples.windows`` holds all w). Users with fewer than
  ``w + 2`` interactions are trained on whole and not evaluated; ``too_short`` counts them.
  ``w = 1`` is leave-one-out.
* ``cold_items = p`` removes a random share ``p`` of the catalogue (seeded by ``cold_seed``) from
  every training sequence, so that test targets among them are items no model has trained on
  (cold-start recall); evaluation histories and targets are untouched.
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
    """One evaluation target per user: the history before it, in CSR form. ``windows`` ``[U, w]``:
    the items held out after the history (the target first), for a test window of w > 1."""

    users: np.ndarray
    targets: np.ndarray
    history_items: np.ndarray
    history_timestamps: np.ndarray
    history_offsets: np.ndarray
    windows: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.users)

    def history(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self.history_offsets[i], self.history_offsets[i + 1]
        return self.history_items[lo:hi], self.history_timestamps[lo:hi]


def check_split_options(test_window: int, cold_items: float) -> None:
    """Raise ``ValueError`` naming the setting when a split option is out of range."""
    if test_window < 1:
        raise ValueError(f"data.test_window must be >= 1 (1: leave-one-out), got {test_window}")
    if not 0.0 <= cold_items < 1.0:
        raise ValueError(f"data.cold_items must be a share in (0, 1), or 0 for none; got {cold_items}")


class ChronologicalSplit:
    """A dataset split along each user's time line: leave-one-out by default, or its test-window
    and cold-item variants (see the module docstring for the rules)."""

    def __init__(
        self, dataset: InteractionDataset, test_window: int = 1, cold_items: float = 0.0, cold_seed: int = 0
    ) -> None:
        check_split_options(test_window, cold_items)
        self.dataset = dataset
        self.n_items = dataset.n_items
        self.test_window = test_window
        self.sequences = build_sequences(dataset)
        # The held-out items (the test window and the validation item) plus one to learn from.
        self.min_length = test_window + MIN_EVAL_LENGTH - 1
        long_enough = self.sequences.lengths >= self.min_length
        self.eval_users = np.flatnonzero(long_enough) + 1
        self.too_short = int((~long_enough & (self.sequences.lengths > 0)).sum())
        if not len(self.eval_users) and len(self.sequences.lengths):
            raise ValueError(
                f"data.test_window={test_window} leaves no user to evaluate: every sequence is shorter than "
                f"{self.min_length} interactions (the longest has {self.sequences.lengths.max()})"
            )
        rng = np.random.default_rng(cold_seed)
        count = round(cold_items * self.n_items)
        self.cold = np.zeros(self.n_items + 1, dtype=bool)
        self.cold[1 + rng.choice(self.n_items, size=count, replace=False)] = True

    def train_sequences(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per user, the part of the sequence a model may learn from (items, timestamps), cold
        items removed."""
        out = []
        for u, n in enumerate(self.sequences.lengths, start=1):
            items, times = self.sequences.user(u)
            keep = n - (self.test_window + 1) if n >= self.min_length else n
            warm = ~self.cold[items[:keep]]
            out.append((items[:keep][warm], times[:keep][warm]))
        return out

    def split_summary(self) -> dict:
        """What the split held out, for a run's results: window, users evaluated and skipped, cold items."""
        return {"test_window": self.test_window, "eval_users": len(self.eval_users), "too_short": self.too_short,
                "cold_items": int(self.cold.sum())}

    def examples(self, stage: Stage) -> EvalExamples:
        """Validation (``s[-(w+1)]`` from ``s[:-(w+1)]``) or test (``s[-w:]`` from ``s[:-w]``)
        examples; w = ``test_window`` (1: leave-one-out)."""
        if stage not in ("valid", "test"):
            raise ValueError(f"stage must be 'valid' or 'test', got {stage!r}")
        held_out = self.test_window + (1 if stage == "valid" else 0)
        starts = self.sequences.offsets[self.eval_users - 1]
        ends = self.sequences.offsets[self.eval_users] - held_out
        targets = self.sequences.items[ends]
        lengths = ends - starts
        index = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends)]) if len(starts) else (
            np.zeros(0, np.int64)
        )
        windows = None
        if stage == "test" and self.test_window > 1:
            windows = self.sequences.items[ends[:, None] + np.arange(self.test_window)]
        return EvalExamples(
            users=self.eval_users.copy(),
            targets=targets,
            history_items=self.sequences.items[index],
            history_timestamps=self.sequences.timestamps[index],
            history_offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            windows=windows,
        )
