"""What every next-item loss shares: a similarity (cosine or dot) and a temperature.

A loss scores query vectors (one per trained position) against item vectors and turns the scores
into a softmax cross-entropy in which the positive item must win. The similarity is a property of
the whole experiment, not only of training: a model trained on cosine scores is evaluated on
cosine scores (both sides L2-normalised) and one trained on dot products on dot products, so the
evaluator reads it from here (``scores_are_cosine``).

The logit scale is ``1 / temperature``, fixed or learnable as in HLLM (initialised to
``1 / temperature``, capped at ``max_scale``).

Item vectors come from the model (``embed_items``, called once per batch with every id the loss
needs), so a text model encodes only the items a batch touches. ``false_negative_threshold``
masks negatives whose cosine to the position's positive exceeds it (HLLM's ``nce_thres``, 0.99
there): near-duplicate items, common when items are text, are not pushed apart.

Under ``torchrun`` a loss whose negatives are shared by the batch (in-batch positives, a shared
uniform draw) gathers them from every rank with their gradients (``across_ranks``; the trainer
sets ``world`` when ``train.gather_negatives``), so each rank's positions meet the global batch's
negatives, as in one process.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from hymirec.config import Settings
from hymirec.distributed import WORLD_OF_ONE, World


@dataclass
class LossConfig(Settings):
    """Settings every loss takes, and the loss's ``name`` (each loss's config class narrows it; this
    one serves ``full_softmax`` and ``auto``). Cosine scores want a small temperature (0.05 is the
    generative-recommenders setting); dot-product scores are usually trained at temperature 1."""

    name: Literal["auto", "full_softmax"] = "auto"
    similarity: Literal["cosine", "dot"] = "cosine"
    temperature: float = 0.05
    learnable_temperature: bool = False
    max_scale: float = 100.0
    false_negative_threshold: float | None = None

    def validate(self) -> None:
        """Raise ValueError for settings no loss can be built from."""
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if not self.max_scale > 0:
            raise ValueError(f"max_scale must be > 0, got {self.max_scale}")
        t = self.false_negative_threshold
        if t is not None and not -1.0 <= t <= 1.0:
            raise ValueError(f"false_negative_threshold is a cosine in [-1, 1], got {t}")

    @classmethod
    def from_settings(cls, settings: "dict[str, Any] | str", where: str) -> "LossConfig":
        """The typed config of the loss ``settings`` name (``{name, <settings>}`` or the bare name):
        how ``train.loss`` is read (``hymirec.config``)."""
        from hymirec.training.losses import loss_config  # the registry imports this module

        return loss_config(settings, where)


class NextItemLoss(nn.Module):
    """Base class: holds the logit scale and prepares vectors for the configured similarity.

    Subclasses implement ``forward(queries [P, D], positives [P], embed_items, generator)`` and
    return the mean loss over the ``P`` positions; ``embed_items`` maps item ids of any shape to
    vectors ``[*shape, D]``.

    A model reads two class attributes to know what to pass: ``window``, how many future items
    each position is trained on, and ``multi_interest``, whether the loss takes ``[P, s, D]``
    interests with ``[P, window]`` targets instead of ``[P, D]`` queries with ``[P]`` positives.
    """

    window: int = 1
    multi_interest: bool = False

    def __init__(self, config: LossConfig, n_items: int) -> None:
        super().__init__()
        self.config = config
        self.n_items = n_items
        self.world: World = WORLD_OF_ONE
        log_scale = torch.tensor(math.log(1.0 / config.temperature))
        if config.learnable_temperature:
            self.log_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer("log_scale", log_scale)

    @property
    def scale(self) -> torch.Tensor:
        """The current logit scale ``1 / temperature`` (at most ``max_scale``)."""
        return self.log_scale.exp().clamp(max=self.config.max_scale)

    def across_ranks(self, rows: torch.Tensor) -> torch.Tensor:
        """Every rank's ``rows`` in rank order (this rank's alone outside torchrun); float rows
        keep their gradient, which flows back to the rank that made them."""
        return self.world.gather_rows(rows, grad=rows.is_floating_point()) if self.world.distributed else rows

    def prepare(self, vectors: torch.Tensor) -> torch.Tensor:
        """Vectors as the similarity compares them: unit length for cosine, as they are for dot."""
        return F.normalize(vectors, dim=-1) if self.config.similarity == "cosine" else vectors

    def false_negatives(
        self, positive_vectors: torch.Tensor, negative_vectors: torch.Tensor
    ) -> torch.Tensor | None:
        """Where a negative is too similar to the row's positive to be one (None: no threshold).

        ``positive_vectors`` ``[P, D]``; ``negative_vectors`` ``[N, D]`` shared by every row or
        ``[P, N, D]`` per row -> bool ``[P, N]``.
        """
        threshold = self.config.false_negative_threshold
        if threshold is None:
            return None
        with torch.no_grad():
            pos = F.normalize(positive_vectors, dim=-1)
            neg = F.normalize(negative_vectors, dim=-1)
            similar = pos @ neg.T if neg.dim() == 2 else torch.einsum("pd,pnd->pn", pos, neg)
        return similar > threshold


ItemEmbedder = Callable[[torch.Tensor], torch.Tensor]
