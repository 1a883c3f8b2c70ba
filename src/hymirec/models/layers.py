"""Building blocks shared by the ID-based sequential recommenders.

Only pieces that more than one model genuinely uses live here: the item table, the
item-plus-position input of the transformer models (SASRec and HSTU read the same input in the
reference implementation), and the causal-and-padding attention mask (or ``None`` where a plain
causal mask does the same).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def item_table(n_items: int, dim: int) -> nn.Embedding:
    """An ``[n_items + 1, dim]`` item embedding table whose row 0 (padding) is zero and frozen.

    Initialised N(0, 0.02) truncated at two standard deviations, as in the generative-recommenders
    reference whose published numbers we compare against.
    """
    table = nn.Embedding(n_items + 1, dim, padding_idx=0)
    nn.init.trunc_normal_(table.weight, std=0.02, a=-0.04, b=0.04)
    with torch.no_grad():
        # The init above overwrote the zero row that padding_idx set up.
        table.weight[0].zero_()
    return table


def lookup(table: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """``table[ids]`` for ids of any shape through ``index_select``, whose backward is an
    ``index_add``: on CPU several times faster than the sorting scatter behind advanced indexing
    for the ``[P, m]`` ids of per-position negatives."""
    return table.index_select(0, ids.reshape(-1)).view(*ids.shape, table.shape[-1])


def attention_mask(items: torch.Tensor) -> torch.Tensor:
    """``[B, L]`` item ids -> ``[B, 1, L, L]`` bool, True where query ``i`` may read key ``j``.

    A key is readable when it is not in the future (``j <= i``) and is a real item (id != 0).
    Every query may also read itself: that only matters for padded queries of an all-padding
    row, whose softmax would otherwise be over nothing (NaN, which poisons the backward pass
    even though those outputs are discarded); real queries always read themselves anyway.
    """
    length = items.shape[1]
    positions = torch.arange(length, device=items.device)
    causal = positions[None, :] <= positions[:, None]
    itself = positions[None, :] == positions[:, None]
    real_key = (items != 0)[:, None, None, :]
    return causal & (real_key | itself)


def causal_attention_mask(items: torch.Tensor) -> torch.Tensor | None:
    """``attention_mask(items)``, or ``None`` (read: a plain causal mask, ``is_causal=True``)
    when that gives the same outputs at every real position.

    An explicit mask rules out PyTorch's fused attention kernels (on CPU at L = 4096 one SASRec
    block took about 3x as long with it, plus building the ``[B, 1, L, L]`` mask). When no real item
    follows a padding one (every row right-padded, or unpadded), each real query's earlier keys
    are all real, so the key mask hides nothing from it: real positions' outputs are unchanged,
    block after block. Padded queries' outputs do change (they also read earlier padding), which
    is fine for callers that read real positions only (SASRec, MoRec, the lightweight recommender
    read hidden states at real positions, position 0 of an all-padding row aside, which reads
    only itself either way). A row with padding before a real item keeps the mask. The check is
    one host sync on GPU.
    """
    real = items != 0
    if not (real[:, 1:] & ~real[:, :-1]).any():
        return None
    return attention_mask(items)


class SequenceInput(nn.Module):
    """Item embedding scaled by ``sqrt(dim)`` plus a learned absolute position embedding.

    This is the SASRec input (Kang & McAuley 2018), which the HSTU reference reuses. Padded
    positions are zeroed so that nothing about padding can enter a model through its input.
    ``normalise`` adds a LayerNorm before the dropout (RecBole's SASRec input).
    """

    def __init__(
        self,
        n_items: int,
        max_len: int,
        dim: int,
        dropout: float,
        positional: bool = True,
        own_table: bool = True,
        normalise: bool = False,
    ) -> None:
        super().__init__()
        self.max_len = max_len
        self.scale = math.sqrt(dim)
        # Without its own table the input reads item vectors given to ``forward`` (text models).
        self.items = item_table(n_items, dim) if own_table else None
        self.positions = nn.Embedding(max_len, dim) if positional else None
        if self.positions is not None:
            # Same scale as the scaled item vectors, so neither term swamps the other at init.
            nn.init.trunc_normal_(
                self.positions.weight, std=1 / self.scale, a=-2 / self.scale, b=2 / self.scale
            )
        self.norm = nn.LayerNorm(dim) if normalise else None
        self.dropout = nn.Dropout(dropout)

    def forward(self, items: torch.Tensor, vectors: torch.Tensor | None = None) -> torch.Tensor:
        """``[B, L]`` item ids (``L <= max_len``) -> ``[B, L, dim]``; ``vectors`` ``[B, L, dim]``
        replace the table lookup when given."""
        length = items.shape[1]
        if length > self.max_len:
            raise ValueError(
                f"sequence length {length} exceeds the model's max_len {self.max_len}"
            )
        x = (self.items(items) if vectors is None else vectors) * self.scale
        if self.positions is not None:
            x = x + self.positions(torch.arange(length, device=items.device))
        if self.norm is not None:
            x = self.norm(x)
        x = self.dropout(x)
        return x * (items != 0).unsqueeze(-1).to(x.dtype)
