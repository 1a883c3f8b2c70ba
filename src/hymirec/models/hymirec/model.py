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
optionally plus a learnable ID embedding (``items.item_ids``). Training cuts each training
sequence into windows of n items (``models.hymirec.cuts``: by default every position once per
epoch); every item of a window is a user state, and the interests after it with its next ``w``
items (``train.loss.window``) go to the loss: DMIL (``train.loss.name: dmil``) clusters and
matches them; a next-item loss trains a single interest (``llm.interests: 1``) on the next item,
the paper's "w/o DMIL" ablation.

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
from hymirec.models.hymirec.cuts import CutPointModel, WindowStates, gather_positions
from hymirec.models.hymirec.history import CompressedHistory
from hymirec.models.hymirec.lightweight import LightweightRecommender


class HyMiRec(CutPointModel):
    """Compressed long history -> lightweight recommender -> LLM recommender -> s interests."""

    config: HyMiRecConfig

    def __init__(self, config: HyMiRecConfig, inputs: ModelInputs) -> None:
        super().__init__(config, inputs, "hymirec")
        hidden = self.llm.hidden_size
        light = config.lightweight
        self.history = self.lightweight = self.coarse_proj = self.shared_ids = self.history_head = None
        if light.enabled:
            self.history = CompressedHistory(config.history, self.items.text)
            self.lightweight = LightweightRecommender(light, inputs.n_items, inputs.max_len, self.history.dim)
            self.coarse_proj = nn.Linear(light.dim, hidden)
            if light.item_ids == "shared":
                self.shared_ids = nn.Linear(hidden, light.dim)
            if light.next_item_weight:
                self.history_head = nn.Linear(light.dim, hidden)

    def window_states(self, items: torch.Tensor, starts: torch.Tensor, last_only: bool = False) -> WindowStates:
        """``[B, L]`` sequences and ``[B, P]`` window starts -> ``WindowStates`` (``history``: the
        lightweight recommender's causal states when its next-item loss is on)."""
        batch, count = starts.shape
        recent = gather_positions(items, starts, self.recent)
        prefix = prefix_mask = history = None
        # With shared item ids the row's vectors are computed once; the window's are rows of them.
        row_vectors = self.embed_items(items) if self.shared_ids is not None else None
        if self.lightweight is not None:
            # The long history of a window is everything before it.
            shared = None if row_vectors is None else self.shared_ids(row_vectors)
            hidden, coarse = self.lightweight(items, self.history(items), starts, shared)
            prefix = self.coarse_proj(coarse).flatten(0, 1)
            prefix_mask = (starts > 0)[..., None].expand(*coarse.shape[:3]).flatten(0, 1)
            if self.history_head is not None and not last_only:
                history = self.history_head(hidden)
        recent_vectors = self.embed_items(recent) if row_vectors is None else gather_positions(row_vectors, starts,
                                                                                               self.recent)
        out, at_items = self.llm(prefix, prefix_mask, recent_vectors.flatten(0, 1), (recent != 0).flatten(0, 1),
                                 last_only)
        return WindowStates(out.view(batch, count, *out.shape[1:]),
                            None if at_items is None else at_items.view(batch, count, *at_items.shape[1:]), history)

    @property
    def history_loss_weight(self) -> float:
        return self.config.lightweight.next_item_weight if self.lightweight is not None else 0.0

    @property
    def history_bytes_per_item(self) -> int:
        """Bytes one long-history item costs to fetch (codes + scales, or raw float32)."""
        return self.history.bytes_per_item if self.history is not None else 0
