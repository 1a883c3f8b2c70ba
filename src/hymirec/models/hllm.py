"""HLLM: an item language model embeds each item's text, a causal user language model reads the
sequence of item embeddings (Chen et al., "HLLM: Enhancing Sequential Recommendations via
Hierarchical Large Language Models for Item and User Modeling", 2024).

The user LM is any causal Hugging Face model driven through ``inputs_embeds`` + ``attention_mask``
(a random tiny Llama for quick presets, SmolLM2-135M or a local checkpoint for faithful ones); its
hidden state at each position is that position's user vector, trained with the next-item loss
against the item vectors (HLLM trains on cosine scores with a learnable temperature). Item
vectors come from ``models.item_side``: the item LM fine-tuned end to end (HLLM's setting, and
this project's stage 1) or frozen and projected, with or without a learnable ID embedding.
Where sizes differ, a linear projection maps item vectors to the user LM's width; scores are
computed in that width. ``shared: true`` uses one LM as both item and user model.

Where this departs from HLLM: HLLM appends its [ITEM] token and reads the item LLM's last layer
(``items.pooling: item_token`` here, with ``items.trainable: true``); the default preset uses the
mean-pooled MiniLM embedding, frozen, for the CPU budget. HLLM's negatives are 512 random items
shared by the batch (``sampled_softmax`` with ``per_position: false``; the presets use the full
softmax where the catalogue is small). Positions enter only through the LM's own (rotary)
position encoding, as in HLLM.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from hymirec.config import Settings
from hymirec.encoders import BackboneConfig, load_backbone
from hymirec.models.base import ModelInputs, SequentialRecommender
from hymirec.models.item_side import ItemSide, ItemSideConfig, ItemSideModel


@dataclass
class HLLMConfig(Settings):
    """HLLM settings: the item side (``items``), the user LM and which parts train."""

    items: ItemSideConfig = field(default_factory=ItemSideConfig)
    user_model: BackboneConfig = field(default_factory=BackboneConfig)
    user_model_trainable: bool = True
    shared: bool = False

    def validate(self) -> None:
        if self.shared and not self.items.trainable:
            raise ValueError("shared: true runs the user LM as item encoder inside the model; set items.trainable")


class HLLM(ItemSideModel, SequentialRecommender):
    """Item LM (or frozen text table) -> causal user LM -> one user vector per position."""

    def __init__(self, config: HLLMConfig, inputs: ModelInputs) -> None:
        super().__init__(inputs)
        self.config = config
        user = load_backbone(config.user_model, "causal")
        self.user_model = user.model
        shared = user if config.shared else None
        self.items = ItemSide(config.items, inputs, user.hidden_size, "hllm", backbone=shared)
        if not config.user_model_trainable:
            self.user_model.requires_grad_(False)
        if not config.shared:
            # The user LM reads item vectors, never token ids: its token table is dead weight,
            # frozen so that it is neither optimised nor copied into checkpoints.
            self.user_model.get_input_embeddings().requires_grad_(False)

    def forward(self, items: torch.Tensor, timestamps: torch.Tensor) -> torch.Tensor:
        """``[B, L]`` item ids (right-padded with 0) -> ``[B, L, hidden]`` float32."""
        embeds = self.embed_items(items)
        dtype = next(self.user_model.parameters()).dtype
        hidden = self.user_model(inputs_embeds=embeds.to(dtype), attention_mask=(items != 0).long())
        return hidden.last_hidden_state.float()

    def train(self, mode: bool = True) -> "HLLM":
        super().train(mode)
        # A frozen LM keeps its dropout off: it is a fixed function of its inputs.
        if not self.config.user_model_trainable:
            self.user_model.eval()
        return self

