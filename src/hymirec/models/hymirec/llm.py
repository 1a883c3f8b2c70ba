"""The LLM recommender: a causal language model that reads a user's state as a sequence of
vectors and emits s refined interest embeddings.

For one user state its input (``inputs_embeds``) is ``[prefix ; indicator I ; last-n item
vectors ; s refined queries]``: the prefix is HyMiRec's coarse interests (or PatchRec's history
patches), the indicator a learnable vector that marks where the summary of the long history ends
and the items begin. The hidden states at the s query positions, through a linear head, are the
interests, in the item vectors' space.

A window of n items holds n user states (one after each item), and all n are read in one pass:
the s queries are placed after *every* item, ``[prefix ; I ; x_1 Q ; x_2 Q ; ... ; x_n Q]``, under
an attention mask in which items never see any query and the queries after ``x_i`` see the
prefix, I, ``x_1..x_i`` and each other (causally), with the positions they would have if the
sequence ended at ``x_i``. Each group of queries therefore computes exactly what the single-state
input ending at ``x_i`` would give, and n states cost ``n (1 + s)`` tokens instead of
``n (n/2 + s)``. The mask goes to the Hugging Face model as a 4-D additive mask, which its
attention implementations take as given.

Inference needs only the state after the window's last item, so ``last_only`` reads the
single-state input itself, ``[prefix ; I ; x_1 ... x_n ; Q]``: ``n + s`` tokens after the head
instead of ``n (1 + s)``, an ordinary causal mask, and the queries at the positions they have
after the last real item (a window shorter than n is right-padded, its padding masked out).
"""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import nn

from hymirec.encoders import load_backbone
from hymirec.models.hymirec.config import LLMRecommenderConfig


@lru_cache(maxsize=16)
def window_layout(
    prefix: int, indicator: bool, items: int, queries: int, device: torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The token layout of one window: ``allowed`` ``[T, T]`` bool (query token ``q`` may read key
    token ``k``, before padding is applied) and ``positions`` ``[T]`` (each token's position id).
    Tokens: ``prefix`` summary tokens, the indicator (if any), then ``items`` groups of one item
    token followed by ``queries`` query tokens. Cached: a model asks for the same layout, on the
    same device, at every step (callers must not modify the tensors)."""
    head = prefix + int(indicator)
    group = 1 + queries
    total = head + items * group
    index = torch.arange(total)
    slot = torch.where(index < head, -1, (index - head) // group)  # the window item a token belongs to
    is_query = (index >= head) & ((index - head) % group > 0)
    causal = index[None, :] <= index[:, None]
    # Keys: the head and items are read by every later token whose slot is at least theirs;
    # query keys only by later queries of their own group.
    same_slot = slot[None, :] == slot[:, None]
    allowed = causal & torch.where(is_query[None, :], same_slot & is_query[:, None], slot[None, :] <= slot[:, None])
    # A query's position is the one it would have after the last item of a window ending at its
    # slot: item x_i at head + i, its queries at head + i + 1 ...
    offset = torch.where(is_query, (index - head) % group, 0)
    positions = torch.where(index < head, index, head + slot + offset)
    return allowed.to(device), positions.to(device)


class LLMRecommender(nn.Module):
    """Prefix vectors + a window of item vectors -> ``[N, n, s, hidden]`` interests (or only the
    last state's, ``last_only``) and ``[N, n, hidden]`` item-token states."""

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
        set_attention_dropout(self.model, config.attention_dropout)
        self.queries = None
        if config.readout == "query":
            self.queries = nn.Parameter(initial_queries(config, self.hidden_size))
        self.indicator = nn.Parameter(torch.randn(1, self.hidden_size) * 0.02) if config.indicator else None
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(self.hidden_size, self.hidden_size)
        if config.head_init == "identity":
            nn.init.eye_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    @property
    def query_tokens(self) -> int:
        """Query tokens after each item: s with the query readout, none with the item readout."""
        return 0 if self.queries is None else self.config.interests

    def forward(
        self,
        prefix: torch.Tensor | None,
        prefix_mask: torch.Tensor | None,
        recent: torch.Tensor,
        recent_mask: torch.Tensor,
        last_only: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``prefix`` ``[N, c, H]`` with ``prefix_mask`` ``[N, c]`` (None: no prefix), ``recent``
        ``[N, n, H]`` item vectors with ``recent_mask`` ``[N, n]`` (real items first, at least
        one with ``last_only``) -> ``(interests, items)``: ``[N, n, s, H]`` the interests after each
        item of the window and ``[N, n, H]`` the item tokens' states; with ``last_only``
        ``([N, 1, s, H], None)``: the interests after its last real item alone.

        A window with no real item (a tiling's unused slot) is not run: its outputs are zeros."""
        live = recent_mask.any(1)
        if last_only or bool(live.all()):
            return self._run(prefix, prefix_mask, recent, recent_mask, last_only)
        interests = recent.new_zeros(len(recent), recent.shape[1], self.config.interests, self.hidden_size,
                                     dtype=torch.float32)
        items = recent.new_zeros(len(recent), recent.shape[1], self.hidden_size, dtype=torch.float32)
        if live.any():
            part = self._run(None if prefix is None else prefix[live], None if prefix is None else prefix_mask[live],
                             recent[live], recent_mask[live], False)
            interests, items = interests.index_put((live,), part[0]), items.index_put((live,), part[1])
        return interests, items

    def _run(self, prefix, prefix_mask, recent, recent_mask, last_only):
        count, n, hidden = recent.shape
        s = self.query_tokens
        body, body_mask = recent, recent_mask
        if last_only:
            last = recent_mask.sum(1) - 1  # the last real item of each window
            if s:
                queries = self.queries.expand(count, s, hidden)
                if self.config.query_offset:
                    queries = queries + recent[torch.arange(count, device=recent.device), last][:, None]
                body = torch.cat([recent, queries.to(recent.dtype)], 1)
                body_mask = torch.cat([recent_mask, recent_mask.new_ones(count, s)], 1)
        elif s:
            queries = self.queries.expand(count, n, s, hidden)
            if self.config.query_offset:
                queries = queries + recent[:, :, None]
            body = torch.cat([recent[:, :, None], queries.to(recent.dtype)], 2).flatten(1, 2)
            body_mask = recent_mask[:, :, None].expand(count, n, 1 + s).flatten(1)
        parts, masks = [], []
        if prefix is not None:
            parts.append(prefix)
            masks.append(prefix_mask)
        if self.indicator is not None:
            parts.append(self.indicator.expand(count, 1, hidden))
            masks.append(recent_mask.new_ones(count, 1))
        tokens = self.dropout(torch.cat([*parts, body], 1))
        real = torch.cat([*masks, body_mask], 1).bool()
        if last_only:
            total = tokens.shape[1]
            allowed = torch.ones(total, total, dtype=torch.bool, device=tokens.device).tril()
            # The queries sit right after the last real item: padding items shift them back.
            index = torch.arange(total, device=tokens.device)
            positions = index - (n - 1 - last)[:, None] * (index >= total - s) if s else index.expand(count, -1)
        else:
            allowed, positions = window_layout(0 if prefix is None else prefix.shape[1], self.indicator is not None, n,
                                               s, tokens.device)
            positions = positions.expand(count, -1)
        # Every token may read itself, so that a padding token's softmax is never over nothing.
        readable = (allowed & real[:, None, :]) | torch.eye(len(allowed), dtype=torch.bool, device=tokens.device)
        dtype = next(self.model.parameters()).dtype
        mask = torch.zeros(readable.shape, dtype=dtype, device=tokens.device)
        mask = mask.masked_fill(~readable, torch.finfo(dtype).min)[:, None]
        hidden_states = self.model(inputs_embeds=tokens.to(dtype), attention_mask=mask,
                                   position_ids=positions).last_hidden_state
        if last_only:
            if s:
                return self.head(hidden_states[:, None, -s:].float()), None
            at_last = hidden_states[torch.arange(count, device=tokens.device), tokens.shape[1] - n + last]
            return self.head(at_last[:, None, None].float()), None
        groups = hidden_states[:, -body.shape[1]:].view(count, n, 1 + s, hidden)
        items = self.head(groups[:, :, 0].float())
        interests = self.head(groups[:, :, 1:].float()) if s else items[:, :, None]
        return interests, items

    def train(self, mode: bool = True) -> "LLMRecommender":
        super().train(mode)
        # A frozen LM keeps its dropout off: it is a fixed function of its inputs.
        if not self.config.trainable:
            self.model.eval()
        return self


def initial_queries(config: LLMRecommenderConfig, hidden: int) -> torch.Tensor:
    """``[s, hidden]`` starting queries: orthogonal rows (``query_init: orthogonal``) or i.i.d.
    normal entries, each entry of about ``query_scale``."""
    if config.query_init == "normal":
        return torch.randn(config.interests, hidden) * config.query_scale
    rows = torch.empty(config.interests, hidden)
    nn.init.orthogonal_(rows)  # unit rows (s <= hidden)
    return rows * config.query_scale * hidden**0.5


def set_attention_dropout(model: nn.Module, p: float) -> None:
    """Attention dropout ``p`` in every attention module of a Hugging Face model that reads it
    from its ``attention_dropout`` attribute (Llama and its kin), and in its config."""
    if hasattr(model, "config"):
        model.config.attention_dropout = p
    for module in model.modules():
        if hasattr(module, "attention_dropout") and isinstance(module.attention_dropout, float):
            module.attention_dropout = p
