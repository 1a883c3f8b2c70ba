"""HyMiRec: a lightweight recommender over the compressed long history and an LLM recommender
over the recent items, joined into several interest embeddings (Zhou et al., "HyMiRec: A Hybrid
Multi-interest Learning Framework for LLM-based Sequential Recommendation").

For a user state (the history up to some item):

1. the long history (every item before the recent window, up to ``data.max_len`` items in all)
   is decoded from its codebook codes and read by the lightweight recommender -> c coarse
   interests;
2. the LLM recommender reads ``[coarse interests ; indicator ; last-n item vectors ; s queries]``
   -> s refined interests in the item vectors' space;
3. an item's score is its best cosine over the s interests (the shared evaluator's max).

Item vectors are the stage-1 export (``items.vectors``), frozen, projected to the LLM's width,
optionally plus a learnable ID embedding (``items.item_ids``). Training draws ``train_windows``
windows of n items from each training sequence per step; every item of a window is a user state
(``models.hymirec.cuts``), and the interests after it with its next ``w`` items
(``train.loss.window``) go to the loss: DMIL (``train.loss.name: dmil``) clusters and matches
them; a next-item loss trains a single interest (``llm.interests: 1``) on the next item, the
paper's "w/o DMIL" ablation.

Where this departs from the paper (which does not pin these down): the lightweight recommender
reads the history *before* the recent window (the LLM reads the window), encodes it causally
once per sequence and reads each window's coarse interests from that pass; the n user states of
a window share one LLM pass (``models.hymirec.llm``), where one pass per state would give the
same outputs at about n/2 times the cost.
"""

from __future__ import annotations

import torch
from torch import nn

from hymirec.models.base import ModelInputs
from hymirec.models.hymirec.config import HyMiRecConfig
from hymirec.models.hymirec.cuts import CutPointModel, gather_positions
from hymirec.models.hymirec.history import CompressedHistory
from hymirec.models.hymirec.lightweight import LightweightRecommender
from hymirec.models.hymirec.llm import LLMRecommender
from hymirec.models.text_items import TextItemEmbedder


class HyMiRec(CutPointModel):
    """Compressed long history -> lightweight recommender -> LLM recommender -> s interests."""

    def __init__(self, config: HyMiRecConfig, inputs: ModelInputs) -> None:
        super().__init__(inputs)
        self.config = config
        self.recent = config.llm.recent
        self.train_windows = config.train_windows
        self.llm = LLMRecommender(config.llm)
        hidden = self.llm.hidden_size
        self.items = TextItemEmbedder(config.items, inputs, hidden, "hymirec")
        self.history = self.lightweight = self.coarse_proj = None
        if config.lightweight.enabled:
            self.history = CompressedHistory(config.history, self.items.text)
            self.lightweight = LightweightRecommender(config.lightweight, inputs.n_items, inputs.max_len,
                                                      self.history.dim)
            self.coarse_proj = nn.Linear(config.lightweight.dim, hidden)

    def interests(self, items: torch.Tensor, starts: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """``[B, L]`` sequences and ``[B, P]`` window starts -> ``[B, P, n, s, D]`` (``[B, P, 1, s, D]``
        with ``last_only``)."""
        batch, count = starts.shape
        recent = gather_positions(items, starts, self.recent)
        prefix = prefix_mask = None
        if self.lightweight is not None:
            # The long history of a window is everything before it.
            coarse = self.lightweight(items, self.history(items), starts)
            prefix = self.coarse_proj(coarse).flatten(0, 1)
            prefix_mask = (starts > 0)[..., None].expand(*coarse.shape[:3]).flatten(0, 1)
        out = self.llm(prefix, prefix_mask, self.embed_items(recent).flatten(0, 1), (recent != 0).flatten(0, 1),
                       last_only)
        return out.view(batch, count, *out.shape[1:])

    @property
    def history_bytes_per_item(self) -> int:
        """Bytes one long-history item costs to fetch (codes + scales, or raw float32)."""
        return self.history.bytes_per_item if self.history is not None else 0
