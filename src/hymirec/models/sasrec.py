"""SASRec: self-attentive sequential recommendation (Kang & McAuley, ICDM 2018).

A stack of causal transformer blocks over item embeddings plus learned absolute positions, a final
LayerNorm, and candidate items scored against the same embedding table the sequence is read with.
Defaults are the ML-1M settings of the generative-recommenders SASRec baseline (dim 50, 2 blocks,
1 head, FFN width 50, dropout 0.2).

Three block arrangements (``layer_norm``):

* ``"query"`` -- the authors' PyTorch port (pmixer/SASRec.pytorch, which generative-recommenders'
  SASRec copies): only the query is layer-normalised, keys and values read the un-normalised
  input, the residual is added to the *normalised* query, then ``LN -> FFN`` with the FFN's own
  residual around the normalised input;
* ``"pre"`` -- the standard pre-LN block (GPT-2 style): ``x + attn(LN(x))`` with keys and values
  normalised too, then ``x + FFN(LN(x))``;
* ``"post"`` -- RecBole's SASRec (BERT-style post-LN): ``LN(x + attn(x))`` then ``LN(x + FFN(x))``,
  the input normalised once (``LN(items + positions)``, then dropout) and no final LayerNorm, the
  blocks' output being normalised already. It departs from RecBole in the FFN's dropout between its
  two layers (RecBole drops only after the second), the Xavier init of the blocks' linear layers
  (RecBole: N(0, 0.02)) and the ``sqrt(dim)`` scale of the item vectors before the input
  LayerNorm (which only changes their weight against the positions).

``activation`` picks the FFN's non-linearity: ReLU (the authors') or GELU (RecBole's).

Where this departs from the port in both arrangements: embeddings are initialised truncated
N(0, 0.02) (the generative-recommenders choice) where the port applies Xavier-normal to every
parameter, including the embeddings; the attention output gets a dropout on its residual branch
(the port drops only inside the attention and the FFN); padded positions are zeroed once at the
input rather than after every block (the key mask, or for right-padded rows causality alone,
already keeps them out of every real position's output).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from hymirec.config import Settings
from hymirec.models.base import ModelInputs, SequentialRecommender
from hymirec.models.layers import SequenceInput, causal_attention_mask, lookup


@dataclass
class SASRecConfig(Settings):
    """SASRec hyper-parameters."""

    dim: int = 50
    num_layers: int = 2
    num_heads: int = 1
    ffn_dim: int = 50
    dropout: float = 0.2
    # Dropout on the attention weights, separate because on CPU it is costly: it forces the
    # unfused attention kernel (about 2.5x the attention time). 0.2 is the reference setting.
    attention_dropout: float = 0.2
    layer_norm: Literal["query", "pre", "post"] = "query"
    activation: Literal["relu", "gelu"] = "relu"

    def validate(self) -> None:
        """Raise ValueError for settings no model can be built from."""
        for name in ("dim", "num_layers", "num_heads", "ffn_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.dim % self.num_heads:
            raise ValueError(
                f"dim ({self.dim}) must be divisible by num_heads ({self.num_heads})"
            )
        for name in ("dropout", "attention_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")


class CausalSelfAttention(nn.Module):
    """Multi-head softmax self-attention restricted by a boolean mask (``None``: plain causal,
    which lets PyTorch pick a fused kernel); queries and keys/values may come from different
    inputs (the authors' block normalises only the query)."""

    def __init__(self, config: SASRecConfig) -> None:
        super().__init__()
        self.num_heads = config.num_heads
        self.dropout = config.attention_dropout
        self.q = nn.Linear(config.dim, config.dim)
        self.kv = nn.Linear(config.dim, 2 * config.dim)
        self.out = nn.Linear(config.dim, config.dim)

    def forward(self, query: torch.Tensor, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """``query``, ``x`` ``[B, L, D]``; ``mask`` ``[B, 1, L, L]``, True where attending is allowed,
        or ``None`` for plain causal attention (``layers.causal_attention_mask``)."""
        batch, length, dim = x.shape
        k, v = self.kv(x).split(dim, dim=-1)
        q, k, v = (
            t.view(batch, length, self.num_heads, dim // self.num_heads).transpose(1, 2)
            for t in (self.q(query), k, v)
        )
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0,
            is_causal=mask is None,
        )
        return self.out(y.transpose(1, 2).reshape(batch, length, dim))


class Block(nn.Module):
    """Attention then point-wise FFN, each with a residual, arranged as ``config.layer_norm`` says."""

    def __init__(self, config: SASRecConfig) -> None:
        super().__init__()
        self.arrangement = config.layer_norm
        self.ln_attn = nn.LayerNorm(config.dim)
        self.attn = CausalSelfAttention(config)
        self.ln_ffn = nn.LayerNorm(config.dim)
        self.ffn = nn.Sequential(
            nn.Linear(config.dim, config.ffn_dim),
            nn.GELU() if config.activation == "gelu" else nn.ReLU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.ffn_dim, config.dim),
        )
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """``[B, L, D]`` -> ``[B, L, D]``; ``mask`` as ``CausalSelfAttention`` takes it."""
        if self.arrangement == "post":
            x = self.ln_attn(x + self.dropout(self.attn(x, x, mask)))
            return self.ln_ffn(x + self.dropout(self.ffn(x)))
        normed = self.ln_attn(x)
        if self.arrangement == "query":
            x = normed + self.dropout(self.attn(normed, x, mask))
            normed = self.ln_ffn(x)
            return normed + self.dropout(self.ffn(normed))
        x = x + self.dropout(self.attn(normed, normed, mask))
        return x + self.dropout(self.ffn(self.ln_ffn(x)))


class SASRec(SequentialRecommender):
    """SASRec over item ids; timestamps are accepted for the common contract and ignored."""

    def __init__(self, config: SASRecConfig, inputs: ModelInputs, own_table: bool = True) -> None:
        super().__init__(inputs)
        self.config = config
        post = config.layer_norm == "post"
        self.input = SequenceInput(
            inputs.n_items, inputs.max_len, config.dim, config.dropout, own_table=own_table, normalise=post
        )
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.num_layers))
        self.ln_final = nn.Identity() if post else nn.LayerNorm(config.dim)
        # Xavier-normal weights, zero biases: the reference baseline's initialisation.
        for module in self.blocks.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_normal_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, items: torch.Tensor, timestamps: torch.Tensor) -> torch.Tensor:
        """``[B, L]`` item ids (right-padded with 0) -> ``[B, L, dim]`` hidden states."""
        # None (fused causal kernels) unless a row has padding before a real item.
        mask = causal_attention_mask(items)
        x = self.embed_inputs(items)
        for block in self.blocks:
            x = block(x, mask)
        return self.ln_final(x)

    def embed_inputs(self, items: torch.Tensor) -> torch.Tensor:
        """The blocks' input: item embeddings scaled, plus positions, dropout, padding zeroed
        (post-LN: normalised before the dropout)."""
        return self.input(items, self.input_vectors(items))

    def input_vectors(self, items: torch.Tensor) -> torch.Tensor | None:
        """Item vectors the input reads instead of its own table (``None``: the table)."""
        return None

    def embed_items(self, ids: torch.Tensor) -> torch.Tensor:
        """Rows of the input item table: ``[*ids.shape, dim]``."""
        return lookup(self.input.items.weight, ids)
