"""Sampled-softmax InfoNCE on cosine scores, the loss family every model here is trained with.

For each query vector ``h`` with positive item ``p`` and ``m`` uniformly drawn negative items
``n_1..n_m`` (shared across the batch, which keeps the cost at one ``[P, m]`` matrix instead of
``[P, m, D]`` gathered vectors):

    loss = -log( exp(s * cos(h, p)) / (exp(s * cos(h, p)) + sum_j exp(s * cos(h, n_j))) )

with ``s = 1 / temperature``. Negatives that equal the positive are masked out, since they are
not negatives. The scale is fixed, or learnable as in HLLM (initialised to ``1 / temperature``,
capped at ``max_scale``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class SampledSoftmaxLoss(nn.Module):
    """InfoNCE with uniform negatives over item ids ``1..n_items``."""

    def __init__(
        self,
        n_items: int,
        num_negatives: int = 128,
        temperature: float = 0.05,
        learnable_temperature: bool = False,
        max_scale: float = 100.0,
    ) -> None:
        super().__init__()
        if num_negatives < 1:
            raise ValueError(f"num_negatives must be >= 1, got {num_negatives}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.n_items = n_items
        self.num_negatives = num_negatives
        self.max_scale = max_scale
        log_scale = torch.tensor(math.log(1.0 / temperature))
        if learnable_temperature:
            self.log_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer("log_scale", log_scale)

    @property
    def scale(self) -> torch.Tensor:
        return self.log_scale.exp().clamp(max=self.max_scale)

    def forward(
        self,
        queries: torch.Tensor,
        item_table: torch.Tensor,
        positives: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """``queries`` ``[P, D]``, ``positives`` ``[P]`` item ids, ``item_table`` ``[N+1, D]``."""
        negatives = torch.randint(
            1, self.n_items + 1, (self.num_negatives,), generator=generator, device=queries.device
        )
        q = F.normalize(queries, dim=-1)
        pos = F.normalize(item_table[positives], dim=-1)
        neg = F.normalize(item_table[negatives], dim=-1)
        pos_logits = (q * pos).sum(-1, keepdim=True)
        neg_logits = q @ neg.T
        neg_logits = neg_logits.masked_fill(negatives.unsqueeze(0) == positives.unsqueeze(1), -torch.inf)
        logits = torch.cat([pos_logits, neg_logits], dim=1) * self.scale
        # The positive sits in column 0 of every row.
        return F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long, device=q.device))
