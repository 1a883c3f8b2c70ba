"""The lightweight recommender: a shallow transformer over the whole (decoded) long history,
read out by c learnable coarse queries into c coarse interest embeddings.

The history is encoded once per sequence with causal blocks (SASRec's, at their own small
width), so that the long history before every window of a training sequence comes from the same
pass: the coarse queries attend only to positions before the window, and a causal position never
reads a later one. Reading the coarse interests for P windows costs P small attentions, not P
passes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from hymirec.models.hymirec.config import LightweightConfig
from hymirec.models.layers import SequenceInput, causal_attention_mask, item_table, lookup
from hymirec.models.sasrec import Block


class CoarseQueries(nn.Module):
    """``c`` learnable queries attending (multi-head) to the hidden states before each cut."""

    def __init__(self, config: LightweightConfig) -> None:
        super().__init__()
        self.heads = config.num_heads
        self.queries = nn.Parameter(torch.empty(config.coarse_queries, config.dim))
        nn.init.trunc_normal_(self.queries, std=0.02, a=-0.04, b=0.04)
        self.q = nn.Linear(config.dim, config.dim)
        self.kv = nn.Linear(config.dim, 2 * config.dim)
        self.out = nn.Linear(config.dim, config.dim)
        self.norm = nn.LayerNorm(config.dim)

    def forward(self, hidden: torch.Tensor, cuts: torch.Tensor) -> torch.Tensor:
        """``hidden`` ``[B, L, D]``, ``cuts`` ``[B, P]`` -> ``[B, P, c, D]``."""
        batch, length, dim = hidden.shape
        head_dim = dim // self.heads
        q = self.q(self.queries).view(-1, self.heads, head_dim).transpose(0, 1)  # [h, c, hd]
        k, v = (t.view(batch, length, self.heads, head_dim).transpose(1, 2)
                for t in self.kv(hidden).split(dim, dim=-1))  # [B, h, L, hd]
        scores = torch.einsum("hcd,bhld->bhcl", q, k) / math.sqrt(head_dim)
        visible = torch.arange(length, device=hidden.device) < cuts[..., None]  # [B, P, L]
        # A cut at 0 has no history; it reads position 0 so that its softmax is defined (the
        # caller masks its coarse interests out).
        visible[..., 0] |= cuts == 0
        scores = scores.unsqueeze(1).masked_fill(~visible[:, :, None, None, :], -torch.inf)
        read = torch.einsum("bphcl,bhld->bpchd", F.softmax(scores, dim=-1), v).flatten(-2)
        return self.norm(self.queries + self.out(read))


class LightweightRecommender(nn.Module):
    """Decoded history vectors -> causal blocks -> coarse interests at each cut point."""

    def __init__(self, config: LightweightConfig, n_items: int, max_len: int, in_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(in_dim, config.dim)
        self.ids = item_table(n_items, config.dim) if config.item_ids == "own" else None
        self.input = SequenceInput(n_items, max_len, config.dim, config.dropout, own_table=False)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.num_layers))
        self.ln_final = nn.LayerNorm(config.dim)
        self.readout = CoarseQueries(config)

    def forward(
        self, items: torch.Tensor, vectors: torch.Tensor, cuts: torch.Tensor, extra: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``items`` ``[B, L]`` ids (right-padded), ``vectors`` ``[B, L, in_dim]`` their decoded
        history vectors, ``cuts`` ``[B, P]``, ``extra`` ``[B, L, dim]`` added to the input (the
        model's own item vectors, projected, with ``item_ids: shared``) -> the causal states
        ``[B, L, dim]`` and the coarse interests ``[B, P, c, dim]``."""
        mask = causal_attention_mask(items)
        x = self.proj(vectors)
        if self.ids is not None:
            x = x + lookup(self.ids.weight, items)
        if extra is not None:
            x = x + extra
        x = self.input(items, x)
        for block in self.blocks:
            x = block(x, mask)
        x = self.ln_final(x)
        return x, self.readout(x, cuts)
