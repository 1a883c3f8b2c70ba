"""User states inside a training sequence, and the model family that reads them.

A model of this family (HyMiRec, PatchRec) summarises a user by what came before a *cut* of the
sequence: the long history before a recent window, and the recent window itself. Training draws
``train_windows`` windows of ``n`` consecutive items from each sequence; inside a window every
item is a cut (the user state right after it), so one pass of the LLM recommender trains n user
states, as a causal user LM trains every position. A cut's targets are the next ``w`` items after
it. Training rows come from the split's training prefixes only, so no target is ever a validation
or test item.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from hymirec.config import ConfigError
from hymirec.models.base import SequentialRecommender
from hymirec.models.text_items import TextItemsModel

if TYPE_CHECKING:
    from hymirec.training.losses import NextItemLoss


def sample_windows(lengths: torch.Tensor, count: int, size: int, generator: torch.Generator | None) -> torch.Tensor:
    """``[B, count]`` start positions of windows of ``size`` items: each window's end is drawn
    uniformly from ``1..length`` and the window is the ``size`` items up to it (from 0 when the
    row is shorter), so every position is trained as often as every other."""
    u = torch.rand(len(lengths), count, generator=generator, device=lengths.device)
    ends = 1 + (u * lengths[:, None]).long().clamp(max=lengths[:, None] - 1)
    return (ends - size).clamp(min=0)


def gather_positions(rows: torch.Tensor, starts: torch.Tensor, size: int) -> torch.Tensor:
    """``[B, P, size, ...]`` entries ``rows[b, start + i]`` of ``[B, L, ...]`` rows (ids or
    vectors; 0 past the row's end)."""
    index = starts[..., None] + torch.arange(size, device=starts.device)
    inside = index < rows.shape[1]
    trailing = rows.shape[2:]
    flat = index.clamp(max=rows.shape[1] - 1).flatten(1)
    flat = flat.view(*flat.shape, *[1] * len(trailing)).expand(*flat.shape, *trailing)
    out = rows.gather(1, flat).view(*index.shape, *trailing)
    return out * inside.view(*inside.shape, *[1] * len(trailing))


def window_targets(targets: torch.Tensor, starts: torch.Tensor, size: int, window: int) -> torch.Tensor:
    """``[B, P, size, window]``: for the cut after item ``start + i`` of each window, the next
    ``window`` items (0 past the row's end). ``targets`` ``[B, L]`` holds each position's next
    item (``targets[:, j]`` follows ``items[:, j]``)."""
    slots = starts[..., None] + torch.arange(size, device=starts.device)
    return gather_positions(targets, slots.flatten(1), window).view(*slots.shape, window)


class CutPointModel(TextItemsModel, SequentialRecommender):
    """A model whose user state is ``[long-history summary ; recent window]`` read by the LLM
    recommender, emitting ``s`` interests after every item of the window.

    Subclasses implement ``interests(items, starts, last_only) -> [B, P, n, s, D]`` (the
    interests at each cut of the windows ``items[start : start + n]``; with ``last_only``, at its
    last real item alone, ``[B, P, 1, s, D]``) and set ``recent`` (n) and ``train_windows``.
    Scores are cosines (the paper's; the evaluator takes the best interest)."""

    similarity = "cosine"
    recent: int
    train_windows: int

    def interests(self, items: torch.Tensor, starts: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """``[B, L]`` sequences (right-padded) and ``[B, P]`` window starts -> ``[B, P, n, s, D]``;
        slot ``i`` of a window is the user state after item ``start + i`` and reads nothing later.
        ``last_only``: only the state after each window's last real item, ``[B, P, 1, s, D]``, at
        the cost of one state (``LLMRecommender``'s ``last_only``)."""
        raise NotImplementedError

    def user_embeddings(
        self, items: torch.Tensor, timestamps: torch.Tensor, lengths: torch.Tensor
    ) -> torch.Tensor:
        """``[B, s, D]``: the interests after each user's whole history (its last n items as
        the recent window). Only that state is computed: serving never needs the window's others."""
        starts = (lengths - self.recent).clamp(min=0)
        return self.interests(items, starts[:, None], last_only=True)[:, 0, 0]

    def training_loss(
        self,
        items: torch.Tensor,
        timestamps: torch.Tensor,
        targets: torch.Tensor,
        loss: NextItemLoss,
        generator: torch.Generator | None,
    ) -> tuple[torch.Tensor, int]:
        """The loss at every cut of ``train_windows`` random windows of each row, with the next
        ``loss.window`` items after each cut as its targets, and the number of targets.

        A multi-interest loss (DMIL) takes the interests and target windows as they are; a
        next-item loss takes a single interest and the first target of each cut."""
        with self.batch_scope():
            starts = sample_windows((items != 0).sum(1), self.train_windows, self.recent, generator)
            window = window_targets(targets, starts, self.recent, getattr(loss, "window", 1)).flatten(0, 2)
            interests = self.interests(items, starts).flatten(0, 2)
            keep = window[:, 0] > 0  # a cut with a next item (real cuts only: padding has none)
            interests, window = interests[keep], window[keep]
            if getattr(loss, "multi_interest", False):
                return loss(interests, window, self.embed_items, generator), int((window > 0).sum())
            if interests.shape[1] != 1:
                raise ConfigError(
                    f"train.loss {type(loss).__name__} trains a single interest, the model has "
                    f"{interests.shape[1]}: set llm.interests: 1 or train.loss.name: dmil"
                )
            return loss(interests[:, 0], window[:, 0], self.embed_items, generator), int(keep.sum())
