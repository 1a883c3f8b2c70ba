"""SASRec: self-attentive sequential recommendation (Kang & McAuley, ICDM 2018).

A stack of causal transformer blocks over item embeddings plus learned absolute positions. The
blocks are pre-LayerNorm (normalise, transform, add back) with a final LayerNorm, the arrangement
of the authors' PyTorch port; the defaults are the ML-1M settings of the generative-recommenders
SASRec baseline (dim 50, 2 blocks, 1 head, FFN width 50, dropout 0.2). Candidate items are scored
against the same embedding table the sequence is read with.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hymirec.models.base import SequentialRecommender
from hymirec.models.layers import SequenceInput, attention_mask


@dataclass
class SASRecConfig:
    """SASRec hyper-parameters."""

    dim: int = 50
    num_layers: int = 2
    num_heads: int = 1
    ffn_dim: int = 50
    dropout: float = 0.2
    # Dropout on the attention weights, separate because on CPU it is costly: it forces the
    # unfused attention kernel (about 2.5x the attention time). 0.2 is the reference setting.
    attention_dropout: float = 0.2

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
    """Multi-head softmax self-attention restricted by a boolean mask."""

    def __init__(self, config: SASRecConfig) -> None:
        super().__init__()
        self.num_heads = config.num_heads
        self.dropout = config.attention_dropout
        self.qkv = nn.Linear(config.dim, 3 * config.dim)
        self.out = nn.Linear(config.dim, config.dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x`` ``[B, L, D]``; ``mask`` ``[B, 1, L, L]``, True where attending is allowed."""
        batch, length, dim = x.shape
        q, k, v = self.qkv(x).split(dim, dim=-1)
        q, k, v = (
            t.view(batch, length, self.num_heads, dim // self.num_heads).transpose(1, 2)
            for t in (q, k, v)
        )
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0
        )
        return self.out(y.transpose(1, 2).reshape(batch, length, dim))


class Block(nn.Module):
    """Pre-LN transformer block: attention then point-wise FFN, each as a residual branch."""

    def __init__(self, config: SASRecConfig) -> None:
        super().__init__()
        self.ln_attn = nn.LayerNorm(config.dim)
        self.attn = CausalSelfAttention(config)
        self.ln_ffn = nn.LayerNorm(config.dim)
        self.ffn = nn.Sequential(
            nn.Linear(config.dim, config.ffn_dim),
            nn.ReLU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.ffn_dim, config.dim),
        )
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``[B, L, D]`` -> ``[B, L, D]``."""
        x = x + self.dropout(self.attn(self.ln_attn(x), mask))
        return x + self.dropout(self.ffn(self.ln_ffn(x)))


class SASRec(SequentialRecommender):
    """SASRec over item ids; timestamps are accepted for the common contract and ignored."""

    def __init__(self, config: SASRecConfig, n_items: int, max_len: int) -> None:
        super().__init__(n_items, max_len)
        self.config = config
        self.input = SequenceInput(n_items, max_len, config.dim, config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.num_layers))
        self.ln_final = nn.LayerNorm(config.dim)
        # Xavier-normal weights, zero biases: the reference baseline's initialisation.
        for module in self.blocks.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_normal_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, items: torch.Tensor, timestamps: torch.Tensor) -> torch.Tensor:
        """``[B, L]`` item ids (right-padded with 0) -> ``[B, L, dim]`` hidden states."""
        mask = attention_mask(items)
        x = self.input(items)
        for block in self.blocks:
            x = block(x, mask)
        return self.ln_final(x)

    def item_embeddings(self) -> torch.Tensor:
        """The input item table, ``[n_items + 1, dim]``."""
        return self.input.items.weight
