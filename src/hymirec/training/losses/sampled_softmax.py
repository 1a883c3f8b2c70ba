"""Sampled softmax: the positive against a sample of negatives, for catalogues too large for a
full softmax.

    loss = -log( exp(s * sim(h, e_p)) / (exp(s * sim(h, e_p)) + sum_j exp(s * sim(h, e_{n_j}))) )

Negatives come from up to two sources:

* ``num_negatives`` items drawn uniformly from ``1..N``, either **per position** (each trained
  position gets its own draw, as the generative-recommenders reference does; ``[P, m, D]``
  gathered vectors) or **shared** by the whole batch (one draw of ``m`` for all ``P`` positions;
  a single ``[P, m]`` matrix, cheaper, but on a small catalogue ~3,000 positions then see the
  same 128 items and most of the signal is lost -- measured in docs/training.md);
* ``in_batch``: the positives of the other positions in the batch (popular items appear more
  often there, a popularity-weighted sample that costs one ``[P, P]`` matrix).

Under ``torchrun`` the in-batch positives and a shared draw come from every rank
(``across_ranks``); per-position draws stay each position's own.

A negative equal to the position's own positive is not a negative and is masked out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from hymirec.training.losses.base import ItemEmbedder, LossConfig, NextItemLoss


@dataclass
class SampledSoftmaxConfig(LossConfig):
    """Sampled-softmax settings; ``num_negatives: 0`` with ``in_batch: true`` uses in-batch only."""

    name: Literal["sampled_softmax"] = "sampled_softmax"
    num_negatives: int = 128
    per_position: bool = True
    in_batch: bool = False

    def validate(self) -> None:
        super().validate()
        if self.num_negatives < 0:
            raise ValueError(f"num_negatives must be >= 0, got {self.num_negatives}")
        if self.num_negatives == 0 and not self.in_batch:
            raise ValueError("num_negatives is 0 and in_batch is false: there would be no negatives")


class SampledSoftmaxLoss(NextItemLoss):
    """Softmax of the positive against uniform and/or in-batch negatives."""

    config: SampledSoftmaxConfig

    def __init__(self, config: SampledSoftmaxConfig, n_items: int) -> None:
        super().__init__(config, n_items)
        if config.num_negatives >= n_items:
            raise ValueError(
                f"num_negatives ({config.num_negatives}) must be smaller than the catalogue "
                f"({n_items} items); use the full_softmax loss for a catalogue this small"
            )

    def sample(self, n_positions: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
        """Uniform negative ids in ``1..N``: ``[P, m]`` per position, or ``[1, m]`` shared."""
        rows = n_positions if self.config.per_position else 1
        return torch.randint(
            1, self.n_items + 1, (rows, self.config.num_negatives), generator=generator, device=device
        )

    def forward(
        self,
        queries: torch.Tensor,
        positives: torch.Tensor,
        embed_items: ItemEmbedder,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """``queries`` ``[P, D]``, ``positives`` ``[P]`` ids in 1..N."""
        q = self.prepare(queries)
        negatives = self.sample(len(q), generator, q.device) if self.config.num_negatives else None
        # One call for every id the batch needs, so a text model encodes each item once.
        ids = positives if negatives is None else torch.cat([positives, negatives.reshape(-1)])
        vectors = embed_items(ids)
        pos_raw = vectors[: len(positives)]
        pos = self.prepare(pos_raw)
        scale = self.scale
        # Masking comes after scaling: -inf times a learnable scale has a NaN gradient.
        columns = [(q * pos).sum(-1, keepdim=True) * scale]
        if negatives is not None:
            neg_raw = vectors[len(positives) :].view(*negatives.shape, -1)  # [P or 1, m, D]
            neg = self.prepare(neg_raw)
            if self.config.per_position:
                logits = torch.einsum("pd,pmd->pm", q, neg)
            else:
                negatives = self.across_ranks(negatives[0]).unsqueeze(0)
                neg_raw = self.across_ranks(neg_raw[0])
                logits = q @ self.prepare(neg_raw).T
            mask = negatives == positives.unsqueeze(1)
            similar = self.false_negatives(pos_raw, neg_raw)
            columns.append((logits * scale).masked_fill(mask if similar is None else mask | similar, -torch.inf))
        if self.config.in_batch:
            batch_raw, batch_ids = self.across_ranks(pos_raw), self.across_ranks(positives)
            logits = q @ self.prepare(batch_raw).T
            mask = positives.unsqueeze(1) == batch_ids.unsqueeze(0)
            similar = self.false_negatives(pos_raw, batch_raw)
            columns.append((logits * scale).masked_fill(mask if similar is None else mask | similar, -torch.inf))
        # The positive sits in column 0 of every row.
        return F.cross_entropy(torch.cat(columns, dim=1), torch.zeros(len(q), dtype=torch.long, device=q.device))
