"""Small datasets built by hand for tests."""

from __future__ import annotations

import pandas as pd

from hymirec.data.dataset import InteractionDataset


def make_dataset(rows: list[tuple[int, int, int]], n_items: int | None = None, name: str = "toy") -> InteractionDataset:
    """A canonical dataset from ``(user, item, timestamp)`` rows (ids already 1-based, contiguous)."""
    inter = pd.DataFrame(rows, columns=["user", "item", "timestamp"]).astype("int64")
    n_items = n_items or int(inter["item"].max())
    n_users = int(inter["user"].max())
    items = pd.DataFrame({"item": range(1, n_items + 1), "raw_id": [str(i) for i in range(1, n_items + 1)],
                          "title": [f"item {i}" for i in range(1, n_items + 1)]})
    users = pd.DataFrame({"user": range(1, n_users + 1), "raw_id": [str(u) for u in range(1, n_users + 1)]})
    items["item"] = items["item"].astype("int64")
    users["user"] = users["user"].astype("int64")
    return InteractionDataset(name, inter, items, users, text_fields=["title"])
