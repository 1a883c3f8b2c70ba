"""Cold start: a new item's fields become an item the served model reads and recommends.

The path is the one the run's items took, applied to one more item: the item's text (the run's
template over the fields) through the content encoder gives its row of the model's text table
(for a run reading a stage-1 export, the stage-1 run is that encoder: its own text path, then its
projection); the history codebook encodes that row into codes and scales (``add``: no refit;
its drift is reported); then the model's tables grow by one row -- the text table, a zero row of
each learned ID table (a new item has no learned id), the long history's decoding terms -- and
the catalogue gets the item's vector as the model scores it. Models whose items are IDs only, or
whose item encoder is fine-tuned inside the model, cannot add items without retraining: they are
refused with that reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from hymirec.codebook import DriftStatus, ResidualCodebook
from hymirec.data.dataset import InteractionDataset
from hymirec.encoders import ItemTextEncoder, load_backbone, render_item_texts
from hymirec.models.hymirec.history import history_codebook
from hymirec.models.item_side import ItemSide
from hymirec.runs.restored import RestoredRun, RunError, run_folder

# A `hymirec run` folder holds the stage-1 run beside the export that stage 2 reads.
STAGE1 = "stage1"


class ColdStartError(ValueError):
    """This run cannot add items without retraining, or the item's fields cannot be encoded."""


@dataclass(frozen=True)
class NewItem:
    """What adding an item produced: its canonical id, text-table row, codes (empty without a
    codebook) and stored scales (None without), and the codebook's drift after it (None without
    a codebook)."""

    item: int
    vector: np.ndarray
    codes: np.ndarray
    scales: np.ndarray | None
    drift: DriftStatus | None


class TextVectors:
    """Item fields -> the row of ``run.model.items``' text table the item would have had."""

    def __init__(self, run: RestoredRun) -> None:
        items = getattr(run.model, "items", None)
        if not isinstance(items, ItemSide):
            raise ColdStartError(f"model {run.config.model_name!r} has no content encoder: its items are ids, "
                                 "which only training can add")
        if items.encoder is not None:
            raise ColdStartError(f"model {run.config.model_name!r} fine-tunes its item encoder inside the model; "
                                 "adding items needs the frozen-table setting (items.trainable: false)")
        self.run, self.items, self.settings = run, items, items.config
        self.dataset = run.split.dataset
        self.source = self.backbone = None
        if self.settings.vectors:
            self.source = TextVectors(_stage1_run(Path(self.settings.vectors)))
        else:
            self.backbone = load_backbone(self.settings.encoder, "encoder")

    def raw(self, fields: dict[str, str]) -> torch.Tensor:
        """``[d]``: the item's row of this run's text table."""
        if self.source is not None:
            return self.source.projected(fields)
        try:
            one = _one_item(self.dataset, fields)
            text = render_item_texts(one, self.settings.template)
        except ValueError as exc:
            raise ColdStartError(f"the item's fields give no text to encode: {exc}") from exc
        encoder = ItemTextEncoder(self.backbone, text, self.settings.pooling, self.settings.max_tokens)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.settings.precision == "bf16"):
            return encoder.encode_all(progress=False)[1].float()

    @torch.no_grad()
    def projected(self, fields: dict[str, str]) -> torch.Tensor:
        """``[D]``: the item's vector in this run (text row through its projection, no ID part):
        what a run reading this one's export takes as the item's row."""
        vector = self.raw(fields)
        return self.items.proj(vector) if self.items.proj is not None else vector


def _one_item(dataset: InteractionDataset, fields: dict[str, str]) -> InteractionDataset:
    """A dataset of the one item of ``fields`` (and one interaction with it), with ``dataset``'s
    item columns and text fields: what the run's item-text template renders."""
    row = {**{column: "" for column in dataset.items.columns}, **fields, "item": 1, "raw_id": ""}
    interactions = pd.DataFrame({"user": [1], "item": [1], "timestamp": [0]}, dtype="int64")
    users = pd.DataFrame({"user": np.array([1], np.int64), "raw_id": [""]})
    items = pd.DataFrame([row]).astype({"item": "int64"})
    return InteractionDataset(dataset.name, interactions, items, users, text_fields=list(dataset.text_fields))


def _stage1_run(export: Path) -> RestoredRun:
    """The run that wrote ``export`` (the stage-1 run of the ``hymirec run`` folder holding it)."""
    try:
        return RestoredRun.load(run_folder(export.parent / STAGE1))
    except RunError as exc:
        raise ColdStartError(f"items.vectors {export} is not beside its stage-1 run, the encoder new items "
                             f"need ({exc})") from exc


def _grow(table: torch.Tensor, row: torch.Tensor) -> torch.Tensor:
    return torch.cat([table, row.to(table.dtype)[None].to(table.device)])


def _grow_ids(embedding: nn.Embedding | None) -> None:
    """One zero row more in a learned ID table: a new item has no learned id."""
    if embedding is not None:
        embedding.weight = nn.Parameter(_grow(embedding.weight.detach(), torch.zeros(embedding.embedding_dim)),
                                        requires_grad=False)
        embedding.num_embeddings += 1


class ItemAdder:
    """Adds items to a served run's model (see the module docstring); callers add one at a time."""

    def __init__(self, run: RestoredRun) -> None:
        self.run = run
        self._text: TextVectors | None = None
        self._book: ResidualCodebook | None = None

    def encode(self, fields: dict[str, str]) -> np.ndarray:
        """The item of ``fields`` as its row of the model's text table; ``ColdStartError`` when
        this run cannot add items or the fields give none of its item text."""
        if self._text is None:  # loaded on first use: a server that never adds items never pays
            self._text = TextVectors(self.run)
        return self._text.raw(fields).float().numpy()

    def codes(self, vector: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The codes and scales ``grow`` will give the item of text-table row ``vector`` (the
        codebook's encoding is deterministic): what the store keeps beside the row."""
        if not self._compressed():
            return np.zeros(0, np.uint8), None
        codes, scales = self._codebook().encode(vector[None])
        return codes[0], None if scales is None else scales[0]

    def grow(self, vector: np.ndarray) -> NewItem:
        """Grow the model by the item of text-table row ``vector`` (from ``encode`` here, or from
        the store: an item this server or another added); its id is the model's next."""
        raw = torch.from_numpy(np.array(vector, np.float32))
        codes, scales, drift = np.zeros((1, 0), np.uint8), None, None
        if self._compressed():
            book = self._codebook()
            codes, scales = book.add(raw[None].numpy())
            drift = book.drift()
        item = self._extend(raw, codes, scales)
        return NewItem(item, raw.numpy(), codes[0], None if scales is None else scales[0], drift)

    def _compressed(self) -> bool:
        """Whether the model holds its long history as codebook codes."""
        history = getattr(self.run.model, "history", None)
        return history is not None and history.raw is None

    def _codebook(self) -> ResidualCodebook:
        if self._book is None:
            model = self.run.model
            # The model's own codebook: loaded from its file, or fitted again with its seed.
            self._book = history_codebook(model.config.history, model.items.text[1:].float().cpu().numpy())
        return self._book

    def _extend(self, raw: torch.Tensor, codes: np.ndarray, scales: np.ndarray | None) -> int:
        model = self.run.model
        items = model.items
        items.text = _grow(items.text, raw)
        _grow_ids(items.ids)
        history = getattr(model, "history", None)
        if history is not None:
            if history.raw is not None:
                history.raw = items.text.float()
            else:
                rows, weights = self._codebook().decoding_terms(codes, scales)
                history.rows = _grow(history.rows, torch.from_numpy(rows[0]))
                history.weights = _grow(history.weights, torch.from_numpy(weights[0]))
        lightweight = getattr(model, "lightweight", None)
        _grow_ids(getattr(lightweight, "ids", None))
        model.n_items += 1
        return model.n_items
