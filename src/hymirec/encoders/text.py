"""Item texts and the module that turns item ids into backbone embeddings of those texts."""

from __future__ import annotations

import math
import re
import string
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from hymirec.data.dataset import InteractionDataset
from hymirec.encoders.config import POOLINGS, Pooling
from hymirec.encoders.errors import BackboneError
from hymirec.encoders.load import Backbone


def render_item_texts(dataset: InteractionDataset, template: str | None) -> list[str]:
    """One text per item id 1..n (``texts[i - 1]`` is item ``i``'s).

    ``template`` is a format string over item columns, e.g. ``"Title: {title}. Year: {year}"``;
    ``None`` gives ``"field: value"`` pairs of the dataset's text fields joined by ``"; "``
    (blank fields left out). Missing values (NaN/None) render as empty strings. Raises
    ``BackboneError`` for a template field that is not an item column, and for items whose text
    is blank or whose fields are all empty.
    """
    items = dataset.items
    if template is None:
        fields = list(dataset.text_fields)
        if not fields:
            raise BackboneError(f"{dataset.name}: the dataset has no text fields; give a template")
    else:
        fields = _template_fields(template)
        if not fields:
            raise BackboneError(f"template {template!r} reads no item field")
        unknown = [f for f in fields if f not in items.columns]
        if unknown:
            raise BackboneError(
                f"template field(s) {unknown} are not item columns; available: {list(items.columns)}"
            )
    rows = [
        {name: _as_text(value) for name, value in row.items()}
        for row in items[fields].to_dict("records")
    ]
    if template is None:
        texts = ["; ".join(f"{k}: {v}" for k, v in row.items() if v.strip()) for row in rows]
    else:
        texts = [template.format(**row) for row in rows]
    empty = [
        i
        for i, (row, text) in enumerate(zip(rows, texts))
        if not text.strip() or not any(v.strip() for v in row.values())
    ]
    if empty:
        first = empty[0]
        raise BackboneError(
            f"{dataset.name}: {len(empty)} item(s) have no text, the first raw id "
            f"{items['raw_id'].iloc[first]!r} (item {first + 1})"
        )
    return texts


def _template_fields(template: str) -> list[str]:
    """The item columns a format string reads, in order of first use (nested specs included)."""
    fields: list[str] = []
    for _, name, spec, _ in string.Formatter().parse(template):
        if name is None:
            continue
        # "{title.upper}" / "{tags[0]}" read the column before the attribute or index.
        column = re.match(r"[^.\[]*", name).group()
        if not column or column.isdigit():
            raise BackboneError(f"template {template!r}: fields must be named item columns, got {{{name}}}")
        if column not in fields:
            fields.append(column)
        for nested in _template_fields(spec or ""):
            if nested not in fields:
                fields.append(nested)
    return fields


def _as_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


class ItemTextEncoder(nn.Module):
    """Item ids -> pooled backbone embeddings of the items' texts (HLLM's item LLM).

    All texts are tokenised once, here, and kept as one flat buffer with per-item offsets, so
    training never re-tokenises. ``forward`` runs the backbone once per distinct id, on a batch
    right-padded to the longest of those texts. Pooling: ``mean`` over real tokens, ``first``
    token, ``last`` real token, or ``item_token``: a learnable vector appended after each text,
    whose output is the item embedding. Texts are cut to ``max_tokens`` tokens, the item token
    included. Outputs are float32 whatever the backbone's dtype.
    """

    def __init__(
        self, backbone: Backbone, texts: list[str], pooling: Pooling, max_tokens: int = 64
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise BackboneError(f"pooling must be one of {list(POOLINGS)}, got {pooling!r}")
        if backbone.tokenizer is None:
            raise BackboneError("the backbone has no tokenizer, so it cannot encode item texts")
        if not texts:
            raise BackboneError("no item texts to encode")
        text_tokens = max_tokens - 1 if pooling == "item_token" else max_tokens
        if text_tokens < 1:
            raise BackboneError(
                f"max_tokens {max_tokens} leaves no room for text with {pooling} pooling"
            )
        self.model = backbone.model
        pooler = getattr(self.model, "pooler", None)
        if pooler is not None:
            # BERT's pooler head is never read (pooling is done here): nothing to train there.
            pooler.requires_grad_(False)
        self.hidden_size = backbone.hidden_size
        self.pooling = pooling
        self.max_tokens = max_tokens
        tokenizer = backbone.tokenizer
        # Any id works for padding (the attention mask hides it); some causal tokenizers have none.
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        encoded = tokenizer(texts, truncation=True, max_length=text_tokens)["input_ids"]
        lengths = torch.tensor([len(ids) for ids in encoded], dtype=torch.long)
        if (lengths == 0).any():
            first = int(torch.nonzero(lengths == 0)[0])
            raise BackboneError(
                f"{int((lengths == 0).sum())} item text(s) tokenise to nothing, the first item {first + 1}"
            )
        # Not persistent: token ids follow from the texts, checkpoints need not carry them.
        flat = torch.tensor([t for ids in encoded for t in ids], dtype=torch.long)
        self.register_buffer("token_ids", flat, persistent=False)
        self.register_buffer("offsets", torch.cumsum(lengths, 0) - lengths, persistent=False)
        self.register_buffer("lengths", lengths, persistent=False)
        self.item_token = (
            nn.Parameter(torch.randn(self.hidden_size) * 0.02) if pooling == "item_token" else None
        )

    @property
    def n_items(self) -> int:
        return len(self.lengths)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Embeddings of item ``ids`` (any shape, 1-based, 0 = padding -> a zero vector):
        ``[*ids.shape, hidden]``, float32."""
        flat = ids.reshape(-1)
        out = torch.zeros(len(flat), self.hidden_size, device=self.token_ids.device)
        real = flat != 0
        if real.any():
            unique, inverse = torch.unique(flat[real], return_inverse=True)
            if int(unique[0]) < 1 or int(unique[-1]) > self.n_items:
                raise BackboneError(
                    f"item ids must be in 1..{self.n_items} (0 = padding), got "
                    f"{int(unique[0])}..{int(unique[-1])}"
                )
            out[real] = self._encode(unique)[inverse]
        return out.reshape(*ids.shape, self.hidden_size)

    def _encode(self, unique: torch.Tensor) -> torch.Tensor:
        """Pooled embeddings of distinct item ids, one backbone call."""
        lengths = self.lengths[unique - 1]
        positions = torch.arange(int(lengths.max()), device=lengths.device)
        mask = positions < lengths[:, None]
        # Positions past a text's end would read the next item's tokens; they become padding.
        gather = (self.offsets[unique - 1][:, None] + positions).clamp(max=len(self.token_ids) - 1)
        input_ids = torch.where(mask, self.token_ids[gather], self.pad_id)
        if self.pooling == "item_token":
            return self._encode_with_item_token(input_ids, mask, lengths)
        hidden = self.model(input_ids=input_ids, attention_mask=mask.long()).last_hidden_state.float()
        if self.pooling == "first":
            return hidden[:, 0]
        if self.pooling == "last":
            return hidden[torch.arange(len(hidden), device=hidden.device), lengths - 1]
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / lengths[:, None].to(hidden.dtype)

    def _encode_with_item_token(
        self, input_ids: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor
    ) -> torch.Tensor:
        embeds = self.model.get_input_embeddings()(input_ids)
        rows = torch.arange(len(embeds), device=embeds.device)
        # One more slot so the longest text also has room for the item token right after it.
        embeds = torch.cat([embeds, embeds.new_zeros(len(embeds), 1, embeds.shape[-1])], dim=1)
        slot = torch.arange(embeds.shape[1], device=embeds.device) == lengths[:, None]
        embeds = torch.where(slot.unsqueeze(-1), self.item_token.to(embeds.dtype), embeds)
        attention = torch.cat([mask, mask.new_zeros(len(mask), 1)], dim=1) | slot
        hidden = self.model(inputs_embeds=embeds, attention_mask=attention.long()).last_hidden_state
        return hidden[rows, lengths].float()

    @torch.no_grad()
    def encode_all(self, batch_size: int = 64, progress: bool = True) -> torch.Tensor:
        """Embeddings of every item, ``[n_items + 1, hidden]`` float32 with row 0 zero, in eval
        mode and without gradients (for export and evaluation)."""
        if batch_size < 1:
            raise BackboneError(f"batch_size must be >= 1, got {batch_size}")
        # Restore each module's own mode afterwards: the backbone may be in eval mode inside an
        # encoder in training mode, and a blanket train() would switch its dropout on.
        modes = [(module, module.training) for module in self.modules()]
        self.eval()
        out = torch.zeros(self.n_items + 1, self.hidden_size, device=self.token_ids.device)
        # Batches of similar lengths waste little compute on padding.
        order = torch.argsort(self.lengths, stable=True) + 1
        try:
            with tqdm(total=self.n_items, disable=not progress, desc="encoding items", unit="item") as bar:
                for start in range(0, self.n_items, batch_size):
                    ids = order[start : start + batch_size]
                    out[ids] = self._encode(ids)
                    bar.update(len(ids))
        finally:
            for module, training in modes:
                module.training = training
        return out
