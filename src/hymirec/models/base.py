"""The contract every trainable sequential recommender meets.

A model reads right-padded item sequences (id 0 = padding, real items first) with their
timestamps and returns one hidden vector per position. It must be causal: the output at position
``t`` may depend only on inputs at positions ``<= t``; the shared trainer relies on this to
train every position at once (next-item targets), and the tests check it for each model.
Candidate items are scored against ``item_embeddings()``; the trainer and evaluator use cosine
similarity (both sides L2-normalised), so models return raw vectors.
"""

from __future__ import annotations

import torch
from torch import nn


class SequentialRecommender(nn.Module):
    """Base class: subclasses implement ``forward`` and ``item_embeddings``."""

    def __init__(self, n_items: int, max_len: int) -> None:
        super().__init__()
        self.n_items = n_items
        self.max_len = max_len

    def forward(self, items: torch.Tensor, timestamps: torch.Tensor) -> torch.Tensor:
        """``items``, ``timestamps``: ``[B, L]`` int64, right-padded with 0 -> ``[B, L, D]``."""
        raise NotImplementedError

    def item_embeddings(self) -> torch.Tensor:
        """``[n_items + 1, D]`` candidate vectors; row 0 is padding and never recommended."""
        raise NotImplementedError

    def user_embeddings(
        self, items: torch.Tensor, timestamps: torch.Tensor, lengths: torch.Tensor
    ) -> torch.Tensor:
        """The hidden vector at each sequence's last real position: ``[B, D]``."""
        hidden = self(items, timestamps)
        index = (lengths - 1).clamp(min=0)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), index]
