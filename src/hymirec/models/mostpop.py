"""MostPop: every user gets the items most often consumed in the training prefixes.

It is the floor every comparison is read against. It fits the evaluator's vector interface as a
rank-1 model: each item's vector is its training count, each user's vector is ``[1]``.
"""

from __future__ import annotations

import numpy as np
import torch


class MostPop:
    """Popularity over the training part of the split only (no validation/test positions)."""

    def __init__(self, n_items: int) -> None:
        self.n_items = n_items
        self.counts = np.zeros(n_items + 1, dtype=np.int64)

    def fit(self, train_sequences: list[tuple[np.ndarray, np.ndarray]]) -> "MostPop":
        items = [s[0] for s in train_sequences if len(s[0])]
        all_items = np.concatenate(items) if items else np.zeros(0, np.int64)
        self.counts = np.bincount(all_items, minlength=self.n_items + 1).astype(np.int64)
        return self

    def item_vectors(self) -> torch.Tensor:
        return torch.from_numpy(self.counts.astype(np.float32)).unsqueeze(1)

    def user_vectors(self, n_users: int) -> torch.Tensor:
        return torch.ones(n_users, 1)
