"""GRU4Rec: session-based recommendation with recurrent networks (Hidasi et al., ICLR 2016).

Item embeddings pass through a GRU; a linear layer maps each hidden state back to the item
embedding space, where candidates are scored against the input table. A left-to-right recurrence
is causal by construction, and with right padding the padded steps come after every real one, so
they cannot reach a real position's output.

The model follows RecBole 1.2.1's GRU4Rec (recbole/model/sequential_recommender/gru4rec.py and
its gru4rec.yaml): embedding 64, hidden 128, one layer, dropout 0.3 on the embeddings, a GRU
without bias terms, Xavier-normal embeddings and Xavier-uniform GRU weights, a dense layer back to
the embedding width. Scores and loss are the experiment's ``train.loss`` (RecBole's are dot
products under a full softmax: ``similarity: dot, temperature: 1``). Where it departs: the padding
row of the embedding table is kept at zero (RecBole's Xavier init overwrites it; padding never
reaches a real position either way), and training reads ``max_len`` windows of each training
sequence with every position as a target, where RecBole trains one target per prefix.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from hymirec.config import Settings
from hymirec.models.base import ModelInputs, SequentialRecommender
from hymirec.models.layers import item_table, lookup


@dataclass
class GRU4RecConfig(Settings):
    """GRU4Rec hyper-parameters."""

    dim: int = 64
    hidden_size: int = 128
    num_layers: int = 1
    dropout: float = 0.3
    bias: bool = False

    def validate(self) -> None:
        """Raise ValueError for settings no model can be built from."""
        for name in ("dim", "hidden_size", "num_layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


class GRU4Rec(SequentialRecommender):
    """GRU over item embeddings; timestamps are accepted for the common contract and ignored."""

    def __init__(self, config: GRU4RecConfig, inputs: ModelInputs) -> None:
        super().__init__(inputs)
        self.config = config
        self.items = item_table(inputs.n_items, config.dim)
        self.dropout = nn.Dropout(config.dropout)
        self.gru = nn.GRU(
            config.dim,
            config.hidden_size,
            num_layers=config.num_layers,
            batch_first=True,
            # nn.GRU warns about (and ignores) inter-layer dropout with a single layer.
            dropout=config.dropout if config.num_layers > 1 else 0.0,
            bias=config.bias,
        )
        self.proj = nn.Linear(config.hidden_size, config.dim)
        nn.init.xavier_normal_(self.items.weight)
        with torch.no_grad():
            self.items.weight[0].zero_()
        for name, weight in self.gru.named_parameters():
            if name.startswith("weight"):
                nn.init.xavier_uniform_(weight)

    def forward(self, items: torch.Tensor, timestamps: torch.Tensor) -> torch.Tensor:
        """``[B, L]`` item ids (right-padded with 0) -> ``[B, L, dim]`` hidden states."""
        hidden, _ = self.gru(self.dropout(self.items(items)))
        return self.proj(hidden)

    def embed_items(self, ids: torch.Tensor) -> torch.Tensor:
        """Rows of the input item table: ``[*ids.shape, dim]``."""
        return lookup(self.items.weight, ids)
