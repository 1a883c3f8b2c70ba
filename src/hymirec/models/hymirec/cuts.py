"""User states inside a training sequence: cut points, and what each cut sees and predicts.

A cut ``t`` of a sequence splits it into the history ``items[:t]`` (read by the model) and the
future ``items[t:]``; the next ``w`` items after the cut are its window targets. Training rows
come from the split's training prefixes only, so no target is ever a validation or test item.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from hymirec.config import ConfigError
from hymirec.models.base import SequentialRecommender
from hymirec.models.text_items import TextItemsModel

if TYPE_CHECKING:
    from hymirec.training.losses import NextItemLoss


def sample_cuts(lengths: torch.Tensor, count: int, generator: torch.Generator | None) -> torch.Tensor:
    """``[B, count]`` cut points drawn uniformly from ``1..length`` of each row (a cut needs at
    least one item of history and, at ``t = length``, still has the row's next-item target)."""
    u = torch.rand(len(lengths), count, generator=generator, device=lengths.device)
    return 1 + (u * lengths[:, None]).long().clamp(max=lengths[:, None] - 1)


def window_targets(targets: torch.Tensor, cuts: torch.Tensor, window: int) -> torch.Tensor:
    """``[B, P, window]`` ids of the items after each cut (0 past the row's end).

    ``targets`` ``[B, L]`` holds each position's next item (``targets[:, i]`` follows
    ``items[:, i]``), so the items after cut ``t`` are ``targets[t - 1 : t - 1 + window]``."""
    index = cuts[..., None] - 1 + torch.arange(window, device=cuts.device)
    inside = index < targets.shape[1]
    rows = targets.gather(1, index.clamp(max=targets.shape[1] - 1).flatten(1)).view(index.shape)
    return rows * inside


def recent_items(items: torch.Tensor, cuts: torch.Tensor, count: int) -> torch.Tensor:
    """``[B, P, count]`` ids of the last ``count`` items before each cut, oldest first,
    left-padded with 0 where the history is shorter."""
    index = cuts[..., None] - count + torch.arange(count, device=cuts.device)
    rows = items.gather(1, index.clamp(min=0).flatten(1)).view(index.shape)
    return rows * (index >= 0)


class CutPointModel(TextItemsModel, SequentialRecommender):
    """A model that reads a user state (a cut of the sequence) as a whole and emits ``s``
    interests for it (HyMiRec, PatchRec), rather than one vector per position.

    Subclasses implement ``interests(items, cuts) -> [B, P, s, D]`` and set ``train_cuts``.
    Scores are cosines (the paper's, and the evaluator's max over interests)."""

    similarity = "cosine"
    train_cuts: int

    def interests(self, items: torch.Tensor, cuts: torch.Tensor) -> torch.Tensor:
        """``[B, L]`` sequences (right-padded) and ``[B, P]`` cut points -> ``[B, P, s, D]``
        interests of the user state at each cut (only items before the cut are read)."""
        raise NotImplementedError

    def user_embeddings(
        self, items: torch.Tensor, timestamps: torch.Tensor, lengths: torch.Tensor
    ) -> torch.Tensor:
        """``[B, s, D]``: the interests after each user's whole history."""
        return self.interests(items, lengths[:, None])[:, 0]

    def training_loss(
        self,
        items: torch.Tensor,
        timestamps: torch.Tensor,
        targets: torch.Tensor,
        loss: NextItemLoss,
        generator: torch.Generator | None,
    ) -> tuple[torch.Tensor, int]:
        """The loss at ``train_cuts`` random cut points of each row, with the next
        ``loss.window`` items after each cut as its targets, and the number of targets.

        A multi-interest loss (DMIL) takes the interests and windows as they are; a next-item
        loss takes a single interest and the first target of each cut."""
        with self.batch_scope():
            cuts = sample_cuts((items != 0).sum(1), self.train_cuts, generator)
            window = window_targets(targets, cuts, getattr(loss, "window", 1)).flatten(0, 1)
            interests = self.interests(items, cuts).flatten(0, 1)
            if getattr(loss, "multi_interest", False):
                return loss(interests, window, self.embed_items, generator), int((window > 0).sum())
            if interests.shape[1] != 1:
                raise ConfigError(
                    f"train.loss {type(loss).__name__} trains a single interest, the model has "
                    f"{interests.shape[1]}: set llm.interests: 1 or train.loss.name: dmil"
                )
            positives = window[:, 0]
            keep = positives > 0
            return loss(interests[keep, 0], positives[keep], self.embed_items, generator), int(keep.sum())
