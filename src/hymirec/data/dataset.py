"""The canonical dataset form every loader produces and every model reads.

Interactions are a table ``user, item, timestamp`` with contiguous integer ids starting at 1
(0 is reserved for padding) and rows in the order of the source file, so that a stable sort by
time keeps the source order of equal timestamps. Items are a table ``item, raw_id`` plus one string
column per text field. Users are ``user, raw_id``. On disk a dataset is a folder of parquet files
plus ``meta.json`` (name, text fields, counted repairs).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

INTERACTION_COLUMNS = ("user", "item", "timestamp")
FORMAT_VERSION = 1


class DataError(ValueError):
    """Input data is malformed; the message names the file and, where it can, the line."""


@dataclass
class InteractionDataset:
    """Interactions + item texts with contiguous ids (0 = padding).

    ``repairs`` counts every explicit fix a loader made (e.g. dropped duplicate rows, items given
    an empty text) so that ``hymirec data stats`` can report them; nothing is dropped silently.
    """

    name: str
    interactions: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame
    text_fields: list[str] = field(default_factory=list)
    repairs: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    def validate(self) -> None:
        """Check the invariants of the canonical form; raise ``DataError`` when one fails."""
        missing = [c for c in INTERACTION_COLUMNS if c not in self.interactions.columns]
        if missing:
            raise DataError(f"{self.name}: interactions lack column(s) {missing}")
        for table, key in ((self.items, "item"), (self.users, "user")):
            ids = table[key].to_numpy()
            if not np.array_equal(ids, np.arange(1, len(table) + 1)):
                raise DataError(f"{self.name}: {key} ids must be 1..n in order")
        inter = self.interactions
        if len(inter) and (inter["item"].min() < 1 or inter["item"].max() > self.n_items):
            raise DataError(f"{self.name}: interactions reference unknown item ids")
        if len(inter) and (inter["user"].min() < 1 or inter["user"].max() > self.n_users):
            raise DataError(f"{self.name}: interactions reference unknown user ids")
        for name in self.text_fields:
            if name not in self.items.columns:
                raise DataError(f"{self.name}: text field {name!r} is not an item column")

    def item_texts(self, template: str | None = None) -> list[str]:
        """One text per item id 1..n: ``template`` formatted with the item's fields, or
        ``"field: value"`` pairs joined by ``"; "`` when no template is given."""
        rows = self.items[self.text_fields].astype(str).to_dict("records")
        if template is not None:
            return [template.format(**row) for row in rows]
        return ["; ".join(f"{k}: {v}" for k, v in row.items() if v) for row in rows]

    def save(self, directory: str | Path) -> Path:
        """Write the dataset as parquet + ``meta.json`` under ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.interactions.to_parquet(directory / "interactions.parquet", index=False)
        self.items.to_parquet(directory / "items.parquet", index=False)
        self.users.to_parquet(directory / "users.parquet", index=False)
        meta = {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "text_fields": self.text_fields,
            "repairs": self.repairs,
        }
        (directory / "meta.json").write_text(json.dumps(meta, indent=2))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "InteractionDataset":
        """Read a dataset written by ``save``."""
        directory = Path(directory)
        meta_path = directory / "meta.json"
        if not meta_path.is_file():
            raise DataError(f"{directory}: not a hymirec dataset folder (no meta.json)")
        meta = json.loads(meta_path.read_text())
        if meta.get("format_version") != FORMAT_VERSION:
            raise DataError(
                f"{meta_path}: format_version {meta.get('format_version')} is not {FORMAT_VERSION}"
            )
        return cls(
            name=meta["name"],
            interactions=pd.read_parquet(directory / "interactions.parquet"),
            items=pd.read_parquet(directory / "items.parquet"),
            users=pd.read_parquet(directory / "users.parquet"),
            text_fields=list(meta["text_fields"]),
            repairs={k: int(v) for k, v in meta["repairs"].items()},
        )
