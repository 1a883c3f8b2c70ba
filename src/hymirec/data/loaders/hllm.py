"""The HLLM / PixelRec CSV layout: an interactions CSV with header ``item_id,user_id,timestamp``
and an items CSV with ``item_id`` and text columns (UTF-8, standard CSV quoting, so descriptions
may hold commas and line breaks). PixelRec's item files have ``title,tag,description``; HLLM's
Amazon Books file has only ``description,title``. By default the text fields are those of
``title, tag, description`` the file has; ``text_fields`` names them explicitly (any columns).
Extra columns are ignored; column order is free.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hymirec.data.dataset import InteractionDataset
from hymirec.data.loaders.build import InteractionTable, ItemTable, LoadOptions, build_dataset
from hymirec.data.loaders.table import read_delimited

HLLM_TEXT_FIELDS = ("title", "tag", "description")


def load_hllm_csv(
    interactions: str | Path,
    items: str | Path,
    *,
    name: str,
    text_fields: Sequence[str] | None = None,
    options: LoadOptions = LoadOptions(),
) -> InteractionDataset:
    """Load the two CSV files; ``text_fields`` are the item columns used as text (all required;
    None: whichever of ``title, tag, description`` the items file has, at least one).

    Items are numbered in order of first appearance in the items CSV, users in order of first
    appearance in the interactions CSV; interaction rows keep file order.
    """
    inter = read_delimited(interactions, sep=",", quoted=True)
    inter.require(["item_id", "user_id", "timestamp"])
    item_rows = read_delimited(items, sep=",", quoted=True)
    if text_fields is None:
        text_fields = [f for f in HLLM_TEXT_FIELDS if f in item_rows.frame.columns]
        if not text_fields:
            item_rows.require(["item_id", "title"])  # names the header and what it has
    item_rows.require(["item_id", *text_fields])
    return build_dataset(
        name,
        ItemTable(item_rows, "item_id", {f: item_rows.frame[f] for f in text_fields}),
        InteractionTable(inter, "user_id", "item_id", "timestamp"),
        options,
    )
