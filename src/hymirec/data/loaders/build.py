"""From raw rows to the canonical form: id remapping, checks, and counted repairs.

Every loader parses its own file layout into two ``DelimitedFile`` tables and hands them here, so
that the id rule and the handling of bad input are the same for every format:

* items get ids 1..n in order of first appearance in the item file; users get ids 1..n in order
  of first appearance in the interactions file (0 is padding); raw ids are compared as stripped
  strings and kept in the ``raw_id`` columns;
* interaction rows keep the order of the source file (never sorted here: the split sorts stably
  by time, so equal timestamps keep source order);
* items of the item file that no interaction uses are kept: they are retrieval candidates.

Bad input is either an error naming ``file:line`` or, where a fix is safe and the caller allows it,
a repair counted in ``dataset.repairs``:

* always errors: a missing column, a row with the wrong number of fields, text that is not valid
  in the file's encoding, an empty id, a timestamp that is not a whole number, the same item id
  twice in the item file (which text would be right?), no interactions at all;
* an interaction whose item is not in the item file: ``on_unknown_item="error"`` (default) or
  ``"drop"`` (repair ``interactions_with_unknown_item_dropped``);
* a row repeating an earlier one's user, item and timestamp: ``on_duplicate="drop"`` (default;
  repair ``duplicate_rows_dropped``, the first occurrence stays) or ``"error"``;
* an item whose text fields are all empty: ``on_missing_text="keep"`` (default; kept with an
  empty text, counted as ``items_without_text``) or ``"error"``.

Time that goes backwards within a file is normal and left alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args, get_type_hints

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from hymirec.data.dataset import DataError, InteractionDataset
from hymirec.data.loaders.table import DelimitedFile


@dataclass(frozen=True)
class LoadOptions:
    """How a loader treats the input problems that have a safe repair (see the module docstring)."""

    on_unknown_item: Literal["error", "drop"] = "error"
    on_duplicate: Literal["drop", "error"] = "drop"
    on_missing_text: Literal["keep", "error"] = "keep"

    def __post_init__(self) -> None:
        for key, annotation in get_type_hints(LoadOptions).items():
            allowed = get_args(annotation)
            if getattr(self, key) not in allowed:
                raise ValueError(f"{key} must be one of {list(allowed)}, not {getattr(self, key)!r}")


@dataclass(frozen=True)
class ItemTable:
    """Parsed item rows: the raw id column and one string Series per canonical text field
    (aligned with ``source.frame``)."""

    source: DelimitedFile
    id_column: str
    texts: dict[str, pd.Series]


@dataclass(frozen=True)
class InteractionTable:
    """Parsed interaction rows and the names of their user, item and timestamp columns."""

    source: DelimitedFile
    user_column: str
    item_column: str
    time_column: str


def build_dataset(
    name: str, items: ItemTable, interactions: InteractionTable, options: LoadOptions
) -> InteractionDataset:
    """Check, repair (as ``options`` allow) and remap parsed tables into an ``InteractionDataset``."""
    repairs: dict[str, int] = {}
    item_raw = _ids(items.source, items.id_column)
    _reject_duplicate_items(items.source, item_raw)
    texts = {f: s.astype("str").fillna("").str.strip() for f, s in items.texts.items()}
    _check_texts(items.source, texts, options, repairs)

    inter = interactions.source
    if not len(inter.frame):
        raise DataError(f"{inter.path}: no interactions")
    user_raw = _ids(inter, interactions.user_column)
    inter_item_raw = _ids(inter, interactions.item_column)
    item_codes = pd.Index(item_raw).get_indexer(inter_item_raw)
    times = _timestamps(inter, interactions.time_column)

    keep = item_codes >= 0
    n_unknown = int((~keep).sum())
    if n_unknown:
        row = int(np.flatnonzero(~keep)[0])
        if options.on_unknown_item == "error":
            raise DataError(
                f"{inter.at(row)}: item id {inter_item_raw.iat[row]!r} is not in "
                f"{items.source.path} ({n_unknown} interaction(s) reference unknown items; "
                "on_unknown_item='drop' (CLI: --on-unknown-item drop) drops them)"
            )
        repairs["interactions_with_unknown_item_dropped"] = n_unknown

    key = pd.DataFrame({"user": user_raw, "item": item_codes, "time": times})
    duplicate = key.duplicated(keep="first").to_numpy() & keep
    n_duplicate = int(duplicate.sum())
    if n_duplicate:
        if options.on_duplicate == "error":
            row = int(np.flatnonzero(duplicate)[0])
            same = (key == key.iloc[row]).all(axis=1).to_numpy() & keep
            first = int(np.flatnonzero(same)[0])
            raise DataError(
                f"{inter.at(row)}: duplicate of line {int(inter.lines[first])} (same user, item and "
                f"timestamp; {n_duplicate} duplicate row(s) in all; on_duplicate='drop' "
                "(CLI: --on-duplicate drop) drops them)"
            )
        repairs["duplicate_rows_dropped"] = n_duplicate
        keep &= ~duplicate
    if not keep.any():
        raise DataError(f"{inter.path}: no interactions left after dropping {repairs}")

    user_codes, user_ids = pd.factorize(user_raw[keep], sort=False)
    item_ids = np.arange(1, len(item_raw) + 1, dtype=np.int64)
    return InteractionDataset(
        name=name,
        interactions=pd.DataFrame(
            {
                "user": user_codes.astype(np.int64) + 1,
                "item": item_codes[keep].astype(np.int64) + 1,
                "timestamp": times[keep],
            }
        ),
        items=pd.DataFrame({"item": item_ids, "raw_id": item_raw, **texts}),
        users=pd.DataFrame(
            {
                "user": np.arange(1, len(user_ids) + 1, dtype=np.int64),
                "raw_id": pd.Series(np.asarray(user_ids), dtype="str"),
            }
        ),
        text_fields=list(texts),
        repairs=repairs,
    )


def _ids(table: DelimitedFile, column: str) -> pd.Series:
    """The stripped id column; an empty id is an error."""
    ids = table.frame[column].str.strip()
    empty = (ids == "").to_numpy()
    if empty.any():
        raise DataError(f"{table.at(int(np.flatnonzero(empty)[0]))}: empty {column!r}")
    return ids.reset_index(drop=True)


def _reject_duplicate_items(table: DelimitedFile, item_raw: pd.Series) -> None:
    repeated = item_raw.duplicated(keep="first").to_numpy()
    if repeated.any():
        row = int(np.flatnonzero(repeated)[0])
        first = int(np.flatnonzero((item_raw == item_raw.iat[row]).to_numpy())[0])
        raise DataError(
            f"{table.at(row)}: item id {item_raw.iat[row]!r} already defined on line "
            f"{int(table.lines[first])}"
        )


def _check_texts(
    table: DelimitedFile, texts: dict[str, pd.Series], options: LoadOptions, repairs: dict[str, int]
) -> None:
    if not texts:
        raise DataError(f"{table.path}: no text fields to describe the items with")
    empty = np.logical_and.reduce([(s == "").to_numpy() for s in texts.values()])
    n_empty = int(empty.sum())
    if not n_empty:
        return
    if options.on_missing_text == "error":
        raise DataError(
            f"{table.at(int(np.flatnonzero(empty)[0]))}: item has no text in any of "
            f"{list(texts)} ({n_empty} such item(s); on_missing_text='keep' "
            "(CLI: --on-missing-text keep) keeps them with an empty text)"
        )
    repairs["items_without_text"] = n_empty


def _timestamps(table: DelimitedFile, column: str) -> np.ndarray:
    """Integer timestamps; a value that is not a whole number is an error naming its line."""
    raw = table.frame[column].str.strip()
    try:
        return pc.cast(pa.array(raw), pa.int64()).to_numpy()
    except pa.ArrowInvalid:
        pass  # not all plain integers: find out which row, or accept "881250949.0"
    values = pd.to_numeric(raw, errors="coerce")
    numeric = values.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(numeric) | (numeric != np.floor(numeric))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{table.at(row)}: timestamp {raw.iat[row]!r} in column {column!r} is not an integer"
        )
    # Integer text parses to exact int64; only text such as "881250949.0" goes through float64.
    return values.to_numpy().astype(np.int64)
