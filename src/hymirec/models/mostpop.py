"""MostPop: every user gets the items most often consumed in the training prefixes.

It is the floor every comparison is read against. It meets the model contract as a rank-1 model
with nothing to train: each item's vector is its training count, each user's vector is ``[1]``,
scored by dot product.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from hymirec.config import Settings
from hymirec.models.base import ModelInputs, SequentialRecommender


@dataclass
class MostPopConfig(Settings):
    """MostPop has no settings."""


class MostPop(SequentialRecommender):
    """Popularity over the training part of the split only (no validation/test positions)."""

    similarity = "dot"

    def __init__(self, config: MostPopConfig, inputs: ModelInputs) -> None:
        super().__init__(inputs)
        if inputs.train_sequences is None:
            raise ValueError("model 'mostpop' counts the training sequences and needs them to be built")
        items = [s[0] for s in inputs.train_sequences if len(s[0])]
        all_items = np.concatenate(items) if items else np.zeros(0, np.int64)
        counts = np.bincount(all_items, minlength=self.n_items + 1)[: self.n_items + 1]
        self.register_buffer("counts", torch.from_numpy(counts.astype(np.float32)))

    def embed_items(self, ids: torch.Tensor) -> torch.Tensor:
        """``[*ids.shape, 1]``: each item's training count."""
        return self.counts[ids].unsqueeze(-1)

    def user_embeddings(
        self, items: torch.Tensor, timestamps: torch.Tensor, lengths: torch.Tensor
    ) -> torch.Tensor:
        """The same ``[1]`` for everyone: ``[B, 1, 1]``."""
        return torch.ones(len(items), 1, 1, device=self.counts.device)
