"""HyMiRec: a lightweight recommender over the compressed long history and an LLM recommender
over the recent items, joined into several interest embeddings (Zhou et al., "HyMiRec: A Hybrid
Multi-interest Learning Framework for LLM-based Sequential Recommendation").

For a user state (a cut of the sequence):

1. the long history (every item before the cut, up to ``data.max_len``) is decoded from its
   codebook codes and read by the lightweight recommender -> c coarse interests;
2. the LLM recommender reads ``[coarse interests ; indicator ; last-n item vectors ; s queries]``
   -> s refined interests in the item vectors' space;
3. an item's score is its best cosine over the s interests (the shared evaluator's max).

Item vectors are the stage-1 export (``items.vectors``), frozen, projected to the LLM's width,
optionally plus a learnable ID embedding (``items.item_ids``). Training samples ``train_cuts``
cut points of each training sequence per step and hands the interests with the next ``w`` items
(``train.loss.window``) to the loss: DMIL (``train.loss.name: dmil``) clusters and matches them;
a next-item loss trains a single interest (``llm.interests: 1``) on the next item, the paper's
"w/o DMIL" ablation.

Where this departs from the paper: the lightweight recommender encodes the history causally once
per sequence and reads every cut's coarse interests from that pass (one pass per cut in the
paper's telling; the outputs are the same function class, the cost P times lower); the LLM's
prefix sits before the indicator, as the paper's figure draws it.
"""

from __future__ import annotations

import torch
from torch import nn

from hymirec.models.base import ModelInputs
from hymirec.models.hymirec.config import HyMiRecConfig
from hymirec.models.hymirec.cuts import CutPointModel, recent_items
from hymirec.models.hymirec.history import CompressedHistory
from hymirec.models.hymirec.lightweight import LightweightRecommender
from hymirec.models.hymirec.llm import LLMRecommender
from hymirec.models.text_items import TextItemEmbedder


class HyMiRec(CutPointModel):
    """Compressed long history -> lightweight recommender -> LLM recommender -> s interests."""

    def __init__(self, config: HyMiRecConfig, inputs: ModelInputs) -> None:
        super().__init__(inputs)
        self.config = config
        self.train_cuts = config.train_cuts
        self.llm = LLMRecommender(config.llm)
        hidden = self.llm.hidden_size
        self.items = TextItemEmbedder(config.items, inputs, hidden, "hymirec")
        self.history = self.lightweight = self.coarse_proj = None
        if config.lightweight.enabled:
            self.history = CompressedHistory(config.history, self.items.text)
            self.lightweight = LightweightRecommender(config.lightweight, inputs.n_items, inputs.max_len,
                                                      self.history.dim)
            self.coarse_proj = nn.Linear(config.lightweight.dim, hidden)

    def interests(self, items: torch.Tensor, cuts: torch.Tensor) -> torch.Tensor:
        """``[B, L]`` sequences (right-padded) and ``[B, P]`` cut points -> ``[B, P, s, D]``
        interests of the user state at each cut (only items before the cut are read)."""
        batch, count = cuts.shape
        recent = recent_items(items, cuts, self.config.llm.recent).flatten(0, 1)
        prefix = None
        if self.lightweight is not None:
            coarse = self.lightweight(items, self.history(items), cuts)
            prefix = self.coarse_proj(coarse).flatten(0, 1)
        out = self.llm(prefix, None, self.embed_items(recent), recent != 0)
        return out.view(batch, count, *out.shape[1:])

    @property
    def history_bytes_per_item(self) -> int:
        """Bytes one long-history item costs to fetch (codes + scales, or raw float32)."""
        return self.history.bytes_per_item if self.history is not None else 0
