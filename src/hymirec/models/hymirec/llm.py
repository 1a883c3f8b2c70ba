"""The LLM recommender: a causal language model that reads a user's state as a sequence of
vectors and emits s refined interest embeddings.

Its input (``inputs_embeds``) is ``[prefix ; indicator I ; last-n item vectors ; s refined
queries]``: the prefix is HyMiRec's coarse interests (or PatchRec's history patches), the
indicator a learnable vector that marks where the summary of the long history ends and the
items begin. The hidden states at the s query positions, through a linear head, are the
interests, in the item vectors' space. Rows are left-padded (real tokens last, positions counted
over real tokens only), so the queries sit at the same last s positions in every row.
"""

from __future__ import annotations

import torch
from torch import nn

from hymirec.encoders import load_backbone
from hymirec.models.hymirec.config import LLMRecommenderConfig


class LLMRecommender(nn.Module):
    """Prefix vectors + recent item vectors -> ``[N, s, hidden]`` interests."""

    def __init__(self, config: LLMRecommenderConfig) -> None:
        super().__init__()
        self.config = config
        backbone = load_backbone(config.backbone, "causal")
        self.model = backbone.model
        self.hidden_size = backbone.hidden_size
        # The LM reads vectors, never token ids: its token table is dead weight.
        self.model.get_input_embeddings().requires_grad_(False)
        if not config.trainable:
            self.model.requires_grad_(False)
        self.queries = nn.Parameter(torch.randn(config.interests, self.hidden_size) * 0.02)
        self.indicator = nn.Parameter(torch.randn(1, self.hidden_size) * 0.02) if config.indicator else None
        self.head = nn.Linear(self.hidden_size, self.hidden_size)

    def forward(
        self,
        prefix: torch.Tensor | None,
        prefix_mask: torch.Tensor | None,
        recent: torch.Tensor,
        recent_mask: torch.Tensor,
    ) -> torch.Tensor:
        """``prefix`` ``[N, c, H]`` with ``prefix_mask`` ``[N, c]`` (None: no prefix; mask None:
        all real), ``recent`` ``[N, n, H]`` with ``recent_mask`` ``[N, n]`` -> ``[N, s, H]``."""
        n = recent.shape[0]
        ones = recent_mask.new_ones
        parts, masks = [], []
        if prefix is not None:
            parts.append(prefix)
            masks.append(prefix_mask if prefix_mask is not None else ones(n, prefix.shape[1]))
        if self.indicator is not None:
            parts.append(self.indicator.expand(n, 1, -1))
            masks.append(ones(n, 1))
        parts += [recent, self.queries.expand(n, -1, -1)]
        masks += [recent_mask, ones(n, self.config.interests)]
        tokens, mask = torch.cat(parts, 1), torch.cat(masks, 1).bool()
        # Stable sort of the mask moves padding first and keeps the real tokens' order.
        order = torch.sort(mask.int(), dim=1, stable=True).indices
        mask = mask.gather(1, order)
        tokens = tokens.gather(1, order[..., None].expand_as(tokens))
        positions = (mask.long().cumsum(1) - 1).clamp(min=0)
        dtype = next(self.model.parameters()).dtype
        hidden = self.model(inputs_embeds=tokens.to(dtype), attention_mask=mask.long(),
                            position_ids=positions).last_hidden_state
        return self.head(hidden[:, -self.config.interests:].float())

    def train(self, mode: bool = True) -> "LLMRecommender":
        super().train(mode)
        # A frozen LM keeps its dropout off: it is a fixed function of its inputs.
        if not self.config.trainable:
            self.model.eval()
        return self
