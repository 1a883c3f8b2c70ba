"""The contract every recommender meets, from MostPop to the LLM-based models.

A model is built from its config and a ``ModelInputs`` (what it may read from the data: the item
count, the longest sequence it reads, the dataset with its item fields and texts, the training
prefixes). It reads right-padded item sequences (id 0 = padding, real items first) with their
timestamps and offers three things to the shared trainer and evaluator:

* ``embed_items(ids)`` -- candidate item vectors for any tensor of item ids (looked up for ID
  models, computed by a language model for text models; id 0 is padding and never recommended);
* ``user_embeddings(items, timestamps, lengths)`` -- ``[B, K, D]`` user vectors, ``K = 1`` for a
  single-interest model; an item's score is its best similarity over the ``K`` interests;
* ``training_loss(items, timestamps, targets, loss, generator)`` -- the loss of one batch. The
  default is the next-item loss at every position of ``forward``'s ``[B, L, D]`` output, which
  must then be causal: position ``t`` may depend only on inputs at positions ``<= t`` (the tests
  check it for each model). A model with another objective (several interests, window targets)
  overrides it.

Scores are cosine or dot products as the run's loss says (``similarity``: a model whose vectors
only make sense one way, like MostPop's counts, fixes it).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from hymirec.config import ConfigError

if TYPE_CHECKING:
    from hymirec.data.dataset import InteractionDataset
    from hymirec.training.losses import NextItemLoss


@dataclass
class ModelInputs:
    """What a model may read from the data when it is built.

    ``train_sequences`` are the per-user training prefixes of the split (items, timestamps) and
    nothing a validation or test target could leak through; ``dataset`` carries item fields.
    """

    n_items: int
    max_len: int
    dataset: InteractionDataset | None = None
    train_sequences: list[tuple[np.ndarray, np.ndarray]] | None = None

    def __post_init__(self) -> None:
        if self.n_items < 1 or self.max_len < 1:
            raise ValueError(f"n_items and max_len must be positive, got {self.n_items} and {self.max_len}")

    def require_dataset(self, model: str) -> InteractionDataset:
        """The dataset, or a clear error for a model that reads item fields without one."""
        if self.dataset is None:
            raise ValueError(f"model {model!r} reads item texts and needs the dataset to be built")
        return self.dataset


class SequentialRecommender(nn.Module):
    """Base class. ID models implement ``forward`` and ``embed_items``; the rest has defaults."""

    # "cosine" or "dot" when the model's vectors only make sense one way; None: the loss decides.
    similarity: str | None = None
    # How many item ids the evaluator embeds per call (text models lower it).
    item_batch_size: int = 8192

    def __init__(self, inputs: ModelInputs) -> None:
        super().__init__()
        self.n_items = inputs.n_items
        self.max_len = inputs.max_len

    def forward(self, items: torch.Tensor, timestamps: torch.Tensor) -> torch.Tensor:
        """``items``, ``timestamps``: ``[B, L]`` int64, right-padded with 0 -> ``[B, L, D]``."""
        raise NotImplementedError

    def embed_items(self, ids: torch.Tensor) -> torch.Tensor:
        """Candidate vectors ``[*ids.shape, D]`` of item ids in ``0..n_items``."""
        raise NotImplementedError

    def user_embeddings(
        self, items: torch.Tensor, timestamps: torch.Tensor, lengths: torch.Tensor
    ) -> torch.Tensor:
        """``[B, 1, D]``: the hidden vector at each sequence's last real position."""
        hidden = self(items, timestamps)
        index = (lengths - 1).clamp(min=0)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), index].unsqueeze(1)

    def training_loss(
        self,
        items: torch.Tensor,
        timestamps: torch.Tensor,
        targets: torch.Tensor,
        loss: NextItemLoss,
        generator: torch.Generator | None,
    ) -> tuple[torch.Tensor, int]:
        """Mean next-item loss over the batch's real positions, and how many there were."""
        if getattr(loss, "multi_interest", False):
            raise ConfigError(
                f"train.loss {type(loss).__name__} trains several interests per user state; "
                f"{type(self).__name__} has one vector per position (use it with hymirec or patchrec)"
            )
        with self.batch_scope():
            hidden = self(items, timestamps)
            mask = targets > 0
            return loss(hidden[mask], targets[mask], self.embed_items, generator), int(mask.sum())

    def batch_scope(self) -> AbstractContextManager:
        """A context around one training step; text models encode each distinct item of the
        step once inside it."""
        return nullcontext()
