"""PatchRec-style baseline: the long history mean-pooled into patches for the LLM recommender.

The items before the last n are grouped, from the most recent backwards, into patches of
``patch_size``, ``patch_size * growth``, ``patch_size * growth**2``, ... items (older items into
larger patches); the ``patches``-th patch takes everything older still. Each patch is the mean of
its items' vectors. The LLM recommender (HyMiRec's, ``models.hymirec.llm``) reads
``[patches ; last-n item vectors ; query]`` and emits one interest, trained with the next-item
loss: HyMiRec without the lightweight recommender, the codebook and DMIL, with the long history
summarised by fixed pooling instead.

Where this departs from PatchRec (Liao et al., 2025): PatchRec pools item *token* embeddings
within an item and items within a session, and pre-trains the LLM on patched and unpatched
sequences before fine-tuning; here items are single vectors already (the stage-1 export), patches
follow a fixed geometric schedule, and there is no patch pre-training.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

from hymirec.config import Settings
from hymirec.models.base import ModelInputs
from hymirec.models.hymirec.config import LLMRecommenderConfig, check_windows
from hymirec.models.hymirec.cuts import CutPointModel, WindowStates, gather_positions
from hymirec.models.item_side import ItemSideConfig


@dataclass
class PatchLLMConfig(LLMRecommenderConfig):
    """PatchRec's LLM recommender: one interest, no indicator (nothing to mark off)."""

    interests: int = 1
    indicator: bool = False


@dataclass
class PatchRecConfig(Settings):
    """Patch schedule, the LLM recommender (single interest, no indicator by default) and the
    item vectors; ``windows`` / ``train_windows`` as for HyMiRec."""

    items: ItemSideConfig = field(default_factory=ItemSideConfig)
    llm: PatchLLMConfig = field(default_factory=PatchLLMConfig)
    patch_size: int = 4
    growth: int = 2
    patches: int = 8
    windows: Literal["tile", "sample"] = "tile"
    train_windows: int = 1

    def validate(self) -> None:
        for name in ("patch_size", "growth", "patches"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        check_windows(self.train_windows)


def patch_bounds(ends: torch.Tensor, patch_size: int, growth: int, patches: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``[..., patches]`` (start, end) positions of the patches before ``ends`` (exclusive),
    oldest patch first: sizes ``patch_size * growth**j`` going back, the last one reaching 0."""
    sizes = torch.tensor([patch_size * growth**j for j in range(patches)], device=ends.device)
    reach = torch.cumsum(sizes, 0)  # how far back the end of patch j's start lies
    stop = (ends[..., None] - torch.cat([reach.new_zeros(1), reach[:-1]])).clamp(min=0)
    start = (ends[..., None] - reach).clamp(min=0)
    start[..., -1] = 0
    return start.flip(-1), stop.flip(-1)


class PatchRec(CutPointModel):
    """History patches + recent items -> LLM recommender -> one interest."""

    def __init__(self, config: PatchRecConfig, inputs: ModelInputs) -> None:
        super().__init__(config, inputs, "patchrec")

    def window_states(self, items: torch.Tensor, starts: torch.Tensor, last_only: bool = False) -> WindowStates:
        cfg = self.config
        batch, count = starts.shape
        recent = gather_positions(items, starts, self.recent)
        vectors = self.embed_items(items)
        # Prefix sums make every patch mean two gathers, whatever its size.
        sums = torch.cat([vectors.new_zeros(batch, 1, vectors.shape[-1]), vectors.cumsum(1)], 1)
        start, stop = patch_bounds(starts, cfg.patch_size, cfg.growth, cfg.patches)

        def at(positions: torch.Tensor) -> torch.Tensor:
            return sums.gather(1, positions.flatten(1)[..., None].expand(-1, -1, sums.shape[-1]))

        size = (stop - start).flatten(1)
        means = (at(stop) - at(start)) / size.clamp(min=1)[..., None]
        # The recent items' vectors are rows of the ones already computed for the patches.
        out, at_items = self.llm(means.view(batch * count, cfg.patches, -1), (size > 0).view(batch * count, -1),
                                 gather_positions(vectors, starts, self.recent).flatten(0, 1),
                                 (recent != 0).flatten(0, 1), last_only)
        return WindowStates(out.view(batch, count, *out.shape[1:]),
                            None if at_items is None else at_items.view(batch, count, *at_items.shape[1:]))
