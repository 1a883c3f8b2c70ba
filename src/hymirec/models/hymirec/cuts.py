"""User states inside a training sequence, and the model family that reads them.

A model of this family (HyMiRec, PatchRec) summarises a user by what came before a *cut* of the
sequence: the long history before a recent window, and the recent window itself. Training cuts
each sequence into windows of at most ``n`` consecutive items; inside a window every item is a cut
(the user state right after it), so one pass of the LLM recommender trains the window's user
states, as a causal user LM trains every position. A cut's targets are the next ``w`` items after
it. Training rows come from the split's training prefixes only, so no target is ever a validation
or test item.

``windows: tile`` (the default) trains every position of a row exactly once per epoch:
``tile_windows`` cuts the row from its end, the last ``n`` items always one window (the state
evaluation asks for), the rest tiled with a phase drawn per row and call so that window
boundaries, and with them how much recent context a position sees, move between epochs.
``windows: sample`` is the earlier scheme, kept as the reduction benchmark's arm B:
``train_windows`` windows whose ends are drawn uniformly, which covers the most recent positions
least.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import torch

from hymirec.config import ConfigError
from hymirec.models.base import ModelInputs, SequentialRecommender
from hymirec.models.hymirec.llm import LLMRecommender
from hymirec.models.item_side import ItemSide, ItemSideModel

if TYPE_CHECKING:
    from hymirec.training.losses import NextItemLoss


def sample_windows(lengths: torch.Tensor, count: int, size: int, generator: torch.Generator | None) -> torch.Tensor:
    """``[B, count]`` start positions of windows of ``size`` items: each window's end is drawn
    uniformly from ``1..length`` and the window is the ``size`` items up to it (from 0 when the
    row is shorter). A position ``j`` is a trained state when an end falls in ``j+1..j+size``:
    the last position only when the end is the row's last, and windows clamped at 0 are drawn
    about ``size / length`` of the time."""
    u = torch.rand(len(lengths), count, generator=generator, device=lengths.device)
    ends = 1 + (u * lengths[:, None]).long().clamp(max=lengths[:, None] - 1)
    return (ends - size).clamp(min=0)


def tile_windows(
    lengths: torch.Tensor, size: int, generator: torch.Generator | None, begins: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows that tile rows of ``lengths`` items from ``begins`` (default 0) on:
    ``(starts, spans)``, each ``[B, P]``.

    Window 0 is the last ``size`` items of the row (all of its tiled part when shorter); before it
    a window of ``phase`` items (``phase`` drawn uniformly from ``0..size-1`` per row), then
    windows of ``size`` items back to ``begins``. Every position from ``begins`` on lies in
    exactly one window (``start <= j < start + span``), none before it: the positions a row reads
    as context only (``data.window_context``) are long history to its windows, not states; an
    unused window has span 0 and starts at the row's end, where it reads only padding."""
    rows = len(lengths)
    begins = torch.zeros_like(lengths) if begins is None else begins
    count = -(-int((lengths - begins).max()) // size) + 1 if rows else 1
    k = torch.arange(count + 1, device=lengths.device)
    phase = (torch.rand(rows, generator=generator, device=lengths.device) * size).long().clamp(max=size - 1)
    # Bounds L, L - n, L - n - phase, L - 2n - phase, ...: from k = 2 on, shifted by n - phase.
    bounds = lengths[:, None] - size * k + (k >= 2) * (size - phase[:, None])
    bounds = torch.maximum(bounds, begins[:, None])
    starts, spans = bounds[:, 1:], bounds[:, :-1] - bounds[:, 1:]
    return torch.where(spans > 0, starts, lengths[:, None]), spans


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


class WindowStates(NamedTuple):
    """What a cut-point model computes for ``[B, P]`` windows of n items.

    ``interests`` ``[B, P, n, s, D]``: the s interests after each item of each window
    (``[B, P, 1, s, D]``: after its last real item alone, with ``last_only``); ``items``
    ``[B, P, n, D]``: the LLM recommender's states at the item tokens, each read as the next-item
    prediction (HLLM's readout; None with ``last_only``); ``history`` ``[B, L, D]``: the long-history
    branch's causal state at every position of the rows, in the item space (None where the model
    has no such branch or does not read it out)."""

    interests: torch.Tensor
    items: torch.Tensor | None = None
    history: torch.Tensor | None = None


def next_item_loss(
    loss: NextItemLoss,
    queries: torch.Tensor,
    positives: torch.Tensor,
    embed_items,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """The next-item loss of ``queries`` ``[P, D]`` with ``positives`` ``[P]`` under the run's
    ``loss``: a multi-interest loss (DMIL) given one interest and one target per example is
    InfoNCE against the next item, which is what a next-item loss computes."""
    if getattr(loss, "multi_interest", False):
        return loss(queries[:, None], positives[:, None], embed_items, generator)
    return loss(queries, positives, embed_items, generator)


class CutPointModel(ItemSideModel, SequentialRecommender):
    """A model whose user state is ``[long-history summary ; recent window]`` read by the LLM
    recommender, emitting ``s`` interests after every item of the window.

    Built from a config with ``items`` (a ``ItemSideConfig``), ``llm`` (an
    ``LLMRecommenderConfig``), ``windows`` and ``train_windows``; subclasses implement
    ``window_states(items, starts, last_only) -> WindowStates``. Scores are cosines (the paper's;
    the evaluator takes the best interest)."""

    similarity = "cosine"

    def __init__(self, config, inputs: ModelInputs, name: str) -> None:
        super().__init__(inputs)
        self.config = config
        self.recent = config.llm.recent
        self.llm = LLMRecommender(config.llm)
        self.items = ItemSide(config.items, inputs, self.llm.hidden_size, name)

    def window_states(self, items: torch.Tensor, starts: torch.Tensor, last_only: bool = False) -> WindowStates:
        """``[B, L]`` sequences (right-padded) and ``[B, P]`` window starts -> ``WindowStates``;
        slot ``i`` of a window is the user state after item ``start + i`` and reads nothing later."""
        raise NotImplementedError

    def user_embeddings(
        self, items: torch.Tensor, timestamps: torch.Tensor, lengths: torch.Tensor
    ) -> torch.Tensor:
        """``[B, s, D]``: the interests after each user's whole history (its last n items as
        the recent window). Only that state is computed: serving never needs the window's others."""
        starts = (lengths - self.recent).clamp(min=0)
        return self.window_states(items, starts[:, None], last_only=True).interests[:, 0, 0]

    def training_windows(
        self, lengths: torch.Tensor, generator: torch.Generator | None, begins: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(starts, spans)`` ``[B, P]`` of the positions one step trains (``windows`` setting),
        in windows of n - m (``llm.context``); ``begins``: each row's first trained position
        (``tile`` leaves the context before it out)."""
        size = self.recent - self.config.llm.context
        if self.config.windows == "tile":
            return tile_windows(lengths, size, generator, begins)
        starts = sample_windows(lengths, self.config.train_windows, size, generator)
        return starts, torch.full_like(starts, size)

    def training_loss(
        self,
        items: torch.Tensor,
        timestamps: torch.Tensor,
        targets: torch.Tensor,
        loss: NextItemLoss,
        generator: torch.Generator | None,
    ) -> tuple[torch.Tensor, int]:
        """The loss at every cut of the training windows of each row, with the next
        ``loss.window`` items after each cut as its targets, and the number of targets trained
        (one per cut for a next-item loss).

        A multi-interest loss (DMIL) takes the interests and target windows as they are; a
        next-item loss takes a single interest and the first target of each cut. The auxiliary
        next-item losses (``llm.next_item_weight`` at the item tokens, ``lightweight.
        next_item_weight`` at the long-history branch's states) are added with their weights;
        at weight 0 they are not computed."""
        with self.batch_scope():
            # A row's leading positions without a target are context (data.window_context): read
            # as long history, never run through the LLM recommender as states.
            begins = ((targets != 0).cumsum(1) == 0).sum(1)
            starts, spans = self.training_windows((items != 0).sum(1), generator, begins)
            # The LLM reads each window from up to m items before its trained part (llm.context).
            reads = torch.where(spans > 0, (starts - self.config.llm.context).clamp(min=0), starts)
            lead = (starts - reads)[..., None]
            window = window_targets(targets, reads, self.recent, getattr(loss, "window", 1))
            # Only a window's trained slots keep their targets: the context before them is read,
            # not trained here; a tiled window's slots past its span are trained by the next one.
            slot = torch.arange(self.recent, device=items.device)
            window = window * ((slot >= lead) & (slot < lead + spans[..., None]))[..., None]
            states = self.window_states(items, reads)
            keep = window[..., 0] > 0  # a cut with a next item (real cuts only: padding has none)
            interests, window = states.interests[keep], window[keep]
            count = int(keep.sum())
            if getattr(loss, "multi_interest", False):
                total = loss(interests, window, self.embed_items, generator)
                count = int((window > 0).sum())  # DMIL's unit is a target, several per cut
            elif interests.shape[1] != 1:
                raise ConfigError(
                    f"train.loss {type(loss).__name__} trains a single interest, the model has "
                    f"{interests.shape[1]}: set llm.interests: 1 or train.loss.name: dmil"
                )
            else:
                total = loss(interests[:, 0], window[:, 0], self.embed_items, generator)
            item_weight = self.config.llm.next_item_weight
            if item_weight and states.items is not None:
                total = total + item_weight * next_item_loss(loss, states.items[keep], window[:, 0],
                                                             self.embed_items, generator)
            history_weight = self.history_loss_weight
            if history_weight and states.history is not None:
                trained = targets > 0
                total = total + history_weight * next_item_loss(loss, states.history[trained], targets[trained],
                                                                self.embed_items, generator)
            return total, count

    @property
    def history_loss_weight(self) -> float:
        """The weight of the long-history branch's next-item loss (0: none, or no branch)."""
        return 0.0
