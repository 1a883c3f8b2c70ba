"""DMIL (Disentangled Multi-Interest Learning, HyMiRec): each interest learns its own group of the
user's next items.

A multi-interest model emits ``s`` interest vectors ``r_1..r_s`` per training example; the targets
are the next ``w`` items ``t_1..t_w`` after the example's cut point. The targets are clustered
into ``s`` groups (spherical k-means on their item vectors) and the groups matched one-to-one to
the interests (Hungarian algorithm on the interest x centroid cosines, see ``matching``); every
target is then contrasted against its matched interest only:

    L_ctr(t, r) = -log( e^{s*cos(t, r)} / (e^{s*cos(t, r)} + sum_m e^{s*cos(r, e_m)}) )
    L_total     = 1/w * sum_i L_ctr(t_i, r_match(i))

with ``s`` the logit scale (``1 / temperature``) and negatives ``e_m`` either the whole catalogue
or ``negatives`` uniform draws shared by the batch (under ``torchrun``, every rank's draws). The example's other targets are its known
positives and are never negatives. ``L_total`` averages over the valid targets of an example
(windows cut short by the end of the training prefix are padded with 0) and then over examples.
Only matched pairs carry gradient: an interest that got no target is left alone, which is what
keeps the interests apart. ``matching: max`` is the ComiRec-style ablation (each target trains its
most similar interest, no clustering).

``next_item_weight`` (beyond the paper; 0 is the paper's loss) adds the next item's InfoNCE
against its nearest interest: the interest that scores the next item best at evaluation is then
trained on it in every example, whichever group the matching gave that item.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from hymirec.config import require_positive
from hymirec.training.losses.base import ItemEmbedder, LossConfig, NextItemLoss
from hymirec.training.losses.matching import Matching, match_targets, nearest_interest


@dataclass
class DMILConfig(LossConfig):
    """DMIL settings: ``window`` future items per example, ``negatives`` (None: the whole catalogue)."""

    name: Literal["dmil"] = "dmil"
    window: int = 4
    negatives: int | None = None
    matching: Matching = "hungarian"
    cluster_iters: int = 10
    next_item_weight: float = 0.0

    def validate(self) -> None:
        super().validate()
        if self.similarity != "cosine":
            raise ValueError(
                f"similarity must be 'cosine' for the dmil loss (it clusters and matches by cosine), "
                f"got {self.similarity!r}"
            )
        require_positive(self, ("window",), ValueError)
        if self.negatives is not None and self.negatives < 1:
            raise ValueError(f"negatives must be >= 1 (or null for the whole catalogue), got {self.negatives}")
        require_positive(self, ("cluster_iters",), ValueError)
        if not self.next_item_weight >= 0:
            raise ValueError(f"next_item_weight must be >= 0, got {self.next_item_weight}")


class DMILLoss(NextItemLoss):
    """InfoNCE of each future item against the interest its target group is matched to."""

    config: DMILConfig
    multi_interest = True

    def __init__(self, config: DMILConfig, n_items: int) -> None:
        super().__init__(config, n_items)
        self.window = config.window

    def negative_ids(self, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
        """``[N]`` ids every target is contrasted with: all of ``1..N``, or ``negatives`` uniform draws."""
        if self.config.negatives is None:
            return torch.arange(1, self.n_items + 1, device=device)
        return torch.randint(1, self.n_items + 1, (self.config.negatives,), generator=generator, device=device)

    def forward(
        self,
        interests: torch.Tensor,
        targets: torch.Tensor,
        embed_items: ItemEmbedder,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """``interests`` ``[P, s, D]``, ``targets`` ``[P, w]`` ids in 1..N (0: no target)."""
        valid = targets > 0
        negatives = self.negative_ids(generator, interests.device)
        # One call for every id the batch needs, so a text model encodes each item once.
        vectors = embed_items(torch.cat([targets.reshape(-1), negatives]))
        target_raw = vectors[: targets.numel()].view(*targets.shape, -1)
        negative_raw = vectors[targets.numel() :]
        if self.config.negatives is not None:
            negatives, negative_raw = self.across_ranks(negatives), self.across_ranks(negative_raw)
        if not valid.any():
            return interests.sum() * 0
        matched = match_targets(interests, target_raw, valid, self.config.matching, self.config.cluster_iters)
        # From here on one row per valid target; indexing the interests by the match is what
        # confines the gradient to matched pairs.
        example, slot = valid.nonzero(as_tuple=True)
        per_target = self._info_nce(interests[example, matched[example, slot]], target_raw[example, slot],
                                    negative_raw, negatives, targets, valid, example)
        counts = valid.sum(dim=1)
        loss = (per_target / counts[example]).sum() / (counts > 0).sum()
        if self.config.next_item_weight:
            first = valid[:, 0].nonzero(as_tuple=True)[0]
            nearest = nearest_interest(interests[first], target_raw[first, :1])[:, 0]
            next_item = self._info_nce(interests[first, nearest], target_raw[first, 0], negative_raw, negatives,
                                       targets, valid, first)
            loss = loss + self.config.next_item_weight * next_item.mean()
        return loss

    def _info_nce(
        self,
        r: torch.Tensor,
        t_raw: torch.Tensor,
        negative_raw: torch.Tensor,
        negatives: torch.Tensor,
        targets: torch.Tensor,
        valid: torch.Tensor,
        example: torch.Tensor,
    ) -> torch.Tensor:
        """``[K]`` InfoNCE of interests ``r`` ``[K, D]`` with their targets ``t_raw`` ``[K, D]``
        against the negatives, each row's own example's (``example`` ``[K]``) other targets and
        near-duplicates masked."""
        r = F.normalize(r, dim=-1)
        t, e = F.normalize(t_raw, dim=-1), F.normalize(negative_raw, dim=-1)
        known = ((negatives == targets.unsqueeze(-1)) & valid.unsqueeze(-1)).any(dim=1)  # [P, N]
        mask = known[example]
        similar = self.false_negatives(t_raw, negative_raw)
        if similar is not None:
            mask = mask | similar
        scale = self.scale
        # Masking comes after scaling: -inf times a learnable scale has a NaN gradient.
        positive = (r * t).sum(-1, keepdim=True) * scale
        logits = torch.cat([positive, (r @ e.T * scale).masked_fill(mask, -torch.inf)], dim=1)
        return F.cross_entropy(logits, torch.zeros(len(r), dtype=torch.long, device=r.device), reduction="none")
