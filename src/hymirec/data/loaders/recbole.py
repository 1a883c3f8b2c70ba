"""RecBole atomic files: ``NAME.inter`` and ``NAME.item``, tab-separated, typed headers.

Each header cell is ``field:type`` with type ``token``, ``token_seq``, ``float`` or ``float_seq``
(e.g. ``user_id:token	item_id:token	rating:float	timestamp:float``). The item texts are the
item file's ``token`` and ``token_seq`` columns other than the item id, in file order.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hymirec.data.dataset import DataError, InteractionDataset
from hymirec.data.loaders.build import InteractionTable, ItemTable, LoadOptions, build_dataset
from hymirec.data.loaders.table import DelimitedFile, read_delimited

ATOMIC_TYPES = ("token", "token_seq", "float", "float_seq")
TEXT_TYPES = ("token", "token_seq")


def read_atomic(path: str | Path) -> tuple[DelimitedFile, dict[str, str]]:
    """Read one atomic file; columns are renamed to their field names, and the field types are
    returned alongside (``{"user_id": "token", ...}``)."""
    table = read_delimited(path, sep="\t")
    types: dict[str, str] = {}
    for column in table.frame.columns:
        field, colon, kind = column.partition(":")
        if not colon or not field or kind not in ATOMIC_TYPES:
            raise DataError(
                f"{table.path}:1: header cell {column!r} is not 'field:type' with type one of "
                f"{list(ATOMIC_TYPES)}"
            )
        if field in types:
            raise DataError(f"{table.path}:1: field {field!r} appears twice in the header")
        types[field] = kind
    frame = table.frame.set_axis(list(types), axis=1)
    return DelimitedFile(table.path, frame, table.lines, table.header_line), types


def atomic_prefix(path: str | Path) -> Path:
    """``DIR/NAME`` from ``DIR/NAME``, ``DIR/NAME.inter`` or ``DIR`` (RecBole's ``dataset/NAME/NAME.*``)."""
    path = Path(path)
    if path.suffix in (".inter", ".item"):
        return path.with_suffix("")
    if path.is_dir():
        return path / path.name
    return path


def load_recbole(
    path: str | Path,
    *,
    name: str | None = None,
    user_field: str = "user_id",
    item_field: str = "item_id",
    time_field: str = "timestamp",
    text_fields: Sequence[str] | None = None,
    options: LoadOptions = LoadOptions(),
) -> InteractionDataset:
    """Load ``PREFIX.inter`` + ``PREFIX.item`` (``path`` as accepted by ``atomic_prefix``).

    ``text_fields`` defaults to every ``token``/``token_seq`` column of the item file other than
    the item id. Ids follow the rule of ``hymirec.data.loaders.build``: items numbered in order
    of first appearance in the item file, users in order of first appearance in the interactions.
    The dataset is named ``name`` or, by default, the file prefix.
    """
    prefix = atomic_prefix(path)
    inter, _ = read_atomic(prefix.with_name(prefix.name + ".inter"))
    inter.require([user_field, item_field, time_field])
    items, types = read_atomic(prefix.with_name(prefix.name + ".item"))
    items.require([item_field])
    if text_fields is None:
        text_fields = [f for f, kind in types.items() if kind in TEXT_TYPES and f != item_field]
        if not text_fields:
            raise DataError(f"{items.path}:1: no token or token_seq column to use as item text")
    else:
        items.require(text_fields)
    return build_dataset(
        name or prefix.name,
        ItemTable(items, item_field, {f: items.frame[f] for f in text_fields}),
        InteractionTable(inter, user_field, item_field, time_field),
        options,
    )
