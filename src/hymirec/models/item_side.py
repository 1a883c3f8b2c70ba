"""The item side of the text models: item vectors from item text (optionally plus a learnable ID
embedding), as HLLM, MoRec, PatchRec and HyMiRec read them.

Two regimes, one setting (``trainable``):

* **frozen** (MoRec's, and a cheap HLLM): the encoder's vectors are computed once (and cached on
  disk by ``hymirec.encoders.export``), held as a non-trainable table, and a trainable linear
  projection maps them into the model's space; the encoder is not kept in memory;
* **trainable** (HLLM's item LLM, the paper's stage 1): the encoder runs inside the model and is
  fine-tuned end to end; each distinct item of a call goes through it once.

``item_ids: true`` adds a learnable ID embedding to the text vector (text + ID); on MovieLens-100K
text alone is weaker than IDs (the issue's measurement), text + ID stronger than either.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from hymirec.encoders import Backbone, ItemTextEncoder, load_backbone, render_item_texts
from hymirec.encoders.config import ItemTextConfig
from hymirec.encoders.export import exported_vectors, pretrained_item_vectors
from hymirec.models.base import ModelInputs, SequentialRecommender
from hymirec.models.layers import item_table, lookup


@dataclass
class ItemSideConfig(ItemTextConfig):
    """How an item's text becomes its vector (``ItemTextConfig``), whether the encoder is
    fine-tuned (``trainable``), and whether a learnable ID embedding is added (``item_ids``).

    ``vectors``: an item-embeddings export (``hymirec embed``, e.g. of a stage-1 run) to read as
    the frozen table instead of encoding the texts; the encoder settings are then unused.
    ``id_dropout``: dropout on the ID embedding while training (the ID table is what overfits
    first on small data)."""

    trainable: bool = False
    item_ids: bool = False
    vectors: str | None = None
    id_dropout: float = 0.0

    def validate(self) -> None:
        super().validate()
        if not 0.0 <= self.id_dropout < 1.0:
            raise ValueError(f"items.id_dropout must be in [0, 1), got {self.id_dropout}")
        if self.pooling == "item_token" and not self.trainable:
            raise ValueError("pooling item_token learns the token: it needs trainable: true")
        if self.vectors is not None and self.trainable:
            raise ValueError("vectors reads a fixed export: it needs trainable: false")


class ItemSide(nn.Module):
    """Item ids -> ``[*ids.shape, dim]`` vectors from text (+ ID), padding id 0 -> zeros."""

    def __init__(
        self, config: ItemSideConfig, inputs: ModelInputs, dim: int, model: str, backbone: Backbone | None = None
    ) -> None:
        """``backbone``: an already loaded LM to encode with (HLLM's shared item/user model)."""
        super().__init__()
        dataset = inputs.require_dataset(model)
        self.config = config
        if config.trainable:
            texts = render_item_texts(dataset, config.template)
            backbone = backbone or load_backbone(config.encoder, "encoder")
            self.encoder = ItemTextEncoder(backbone, texts, config.pooling, config.max_tokens)
            hidden = backbone.hidden_size
        else:
            if config.vectors:
                vectors = exported_vectors(config.vectors, dataset)
            else:
                vectors = pretrained_item_vectors(dataset, config)
            # Not persistent: rebuilt (from the cache) with the model, never copied into checkpoints.
            self.register_buffer("text", vectors, persistent=False)
            self.encoder = None
            hidden = vectors.shape[1]
        # A frozen table needs a trainable adapter; a trained encoder only where sizes differ.
        self.proj = nn.Linear(hidden, dim) if hidden != dim or not config.trainable else None
        self.ids = item_table(inputs.n_items, dim) if config.item_ids else None
        self.id_dropout = nn.Dropout(config.id_dropout)
        # Ids (sorted) and vectors already encoded in the current step; None outside batch_cache.
        self._memo: tuple[torch.Tensor, torch.Tensor] | None = None

    @property
    def batch_size(self) -> int | None:
        """Items per call when a whole catalogue is embedded; None when a lookup (frozen table)
        has no reason to be chunked."""
        return self.config.batch_size if self.encoder is not None else None

    @contextmanager
    def batch_cache(self) -> Iterator[None]:
        """Within the block, each distinct item goes through the encoder once, however many
        times it is asked for (a batch's inputs, then its positives and negatives); every
        request shares that one encoding and its gradient."""
        if self.encoder is None:
            yield
            return
        device = self.encoder.token_ids.device
        self._memo = (torch.zeros(0, dtype=torch.long, device=device),
                      torch.zeros(0, self.encoder.hidden_size, device=device))
        try:
            yield
        finally:
            self._memo = None

    def _encode(self, ids: torch.Tensor) -> torch.Tensor:
        if self._memo is None:
            return self.encoder(ids)
        unique, inverse = torch.unique(ids.reshape(-1), return_inverse=True)
        known_ids, known = self._memo
        fresh_ids = unique[~torch.isin(unique, known_ids)]
        all_ids, order = torch.sort(torch.cat([known_ids, fresh_ids]))
        all_vectors = torch.cat([known, self.encoder(fresh_ids)])[order]
        self._memo = (all_ids, all_vectors)
        return all_vectors[torch.searchsorted(all_ids, unique)][inverse].reshape(*ids.shape, -1)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        vectors = self._encode(ids) if self.encoder is not None else lookup(self.text, ids)
        if self.proj is not None:
            vectors = self.proj(vectors)
        if self.ids is not None:
            vectors = vectors + self.id_dropout(lookup(self.ids.weight, ids))
        return vectors * (ids != 0).unsqueeze(-1).to(vectors.dtype)


class ItemSideModel:
    """What a model whose item vectors come from a ``ItemSide`` (``self.items``) shares:
    candidates are those vectors, a training step encodes each distinct item once, and the
    catalogue is embedded in the encoder's batch size."""

    items: ItemSide

    def embed_items(self, ids: torch.Tensor) -> torch.Tensor:
        """Text (+ ID) item vectors: ``[*ids.shape, dim]``."""
        return self.items(ids)

    def batch_scope(self) -> AbstractContextManager:
        return self.items.batch_cache()

    @property
    def item_batch_size(self) -> int:
        return self.items.batch_size or SequentialRecommender.item_batch_size
