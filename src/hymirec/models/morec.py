"""MoRec: SASRec over item vectors computed from item text (Yuan et al., SIGIR 2023).

MoRec replaces the ID embedding table of a sequential recommender with a modality encoder; here
the text encoder (all-MiniLM-L6-v2 by default) embeds each item's text, a linear projection maps
it to SASRec's width, and SASRec's blocks read the sequence of those vectors. Candidates are
scored against the same projected vectors. ``items.item_ids: true`` adds a learnable ID
embedding (text + ID), ``items.trainable: true`` fine-tunes the encoder end to end.

Where this departs from the paper: the paper's best MoRec fine-tunes the text encoder end to end
(its finding is that E2E training is what makes modality models competitive); the default here
keeps it frozen (the issue's setting and the CPU budget's) and trains the projection only. The
user encoder is this project's SASRec with its own defaults, not the paper's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from hymirec.models.base import ModelInputs
from hymirec.models.item_side import ItemSide, ItemSideConfig, ItemSideModel
from hymirec.models.sasrec import SASRec, SASRecConfig


@dataclass
class MoRecConfig(SASRecConfig):
    """SASRec's settings plus how items become vectors (``items``)."""

    items: ItemSideConfig = field(default_factory=ItemSideConfig)


class MoRec(ItemSideModel, SASRec):
    """SASRec whose item vectors come from text (and optionally an ID table)."""

    def __init__(self, config: MoRecConfig, inputs: ModelInputs) -> None:
        super().__init__(config, inputs, own_table=False)
        self.items = ItemSide(config.items, inputs, config.dim, "morec")

    def input_vectors(self, items: torch.Tensor) -> torch.Tensor:
        return self.embed_items(items)
