"""What the server keeps between requests, behind one small interface.

Per user: the events (event id, item, time), in arrival order, idempotent by event id, and the
near-line summary of the long history (opaque bytes, with the event count it was computed at).
Per added item: its raw id, codes, scales, text-table row and fields, under a canonical id that
the store hands out (atomically: servers sharing a store grow their catalogues the same way). ``open_store`` picks the implementation
from a URL (``sqlite:PATH``, ``redis://HOST:PORT/DB``). An append returns only after the events are durable: an
acknowledged event survives a crash of the server.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from hymirec.config import ConfigError

# What one stored event costs to read on the recommendation path: item and time, int64 each.
EVENT_BYTES = 16
# What one item id found by ``seen`` costs to read.
SEEN_BYTES = 8


@dataclass(frozen=True)
class Event:
    """One interaction: the client's ``event_id``, the canonical ``item``, unix ``timestamp``."""

    event_id: str
    item: int
    timestamp: int


@dataclass(frozen=True)
class Summary:
    """A user's near-line summary: ``data`` (opaque bytes), computed from the first ``as_of``
    events, at unix time ``updated``."""

    data: bytes
    as_of: int
    updated: float


@dataclass(frozen=True)
class UserState:
    """How many events a user has, and their summary (None before the first is computed)."""

    events: int
    summary: Summary | None


@dataclass(frozen=True)
class StoredItem:
    """An item added while serving: canonical id, raw id, codebook codes and scales, its
    text-table row (float32 bytes: what a restart rebuilds it from), fields."""

    item: int
    raw_id: str
    codes: bytes
    scales: bytes
    vector: bytes
    fields: dict[str, str]


class RawIdTaken(ValueError):
    """An added item's raw id is already stored."""


class ItemIdTaken(ValueError):
    """An added item's canonical id is already stored (another server added an item first)."""


class Store(ABC):
    """The storage interface the service uses; every method is safe to call from any thread."""

    @abstractmethod
    def add_user(self, user: str) -> None:
        """Register ``user`` (with no events) if unknown."""

    def append(self, user: str, events: list[Event]) -> int:
        """Append ``events`` to ``user`` (registered if unknown), skipping event ids already
        stored for them; durable when it returns. Returns how many were new."""
        return self.append_many({user: events})

    @abstractmethod
    def append_many(self, batches: dict[str, list[Event]]) -> int:
        """``append`` for several users in one durable write (a bulk import)."""

    @abstractmethod
    def state(self, user: str) -> UserState | None:
        """The user's event count and summary; None for an unknown user."""

    @abstractmethod
    def latest(self, user: str, limit: int) -> list[Event]:
        """The user's ``limit`` latest events, oldest first."""

    @abstractmethod
    def recent_items(self, user: str, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """Items and timestamps (int64) of the user's ``limit`` latest events, oldest first."""

    @abstractmethod
    def seen(self, user: str, items: np.ndarray) -> np.ndarray:
        """Those of ``items`` the user has an event for (an index lookup per item, whatever the
        history's length)."""

    @abstractmethod
    def put_summary(self, user: str, summary: Summary) -> None:
        """Store ``summary`` unless the stored one is newer (a larger ``as_of``)."""

    @abstractmethod
    def stale(self, min_new: int, older_than: float, limit: int) -> list[str]:
        """Users whose summary is at least ``min_new`` events behind, or any event behind and
        computed before unix time ``older_than`` (at most ``limit``; users with no summary yet
        are not listed: their first request computes it)."""

    @abstractmethod
    def add_item(self, item: StoredItem) -> None:
        """Keep an item added while serving, atomically: its raw id already stored is
        ``RawIdTaken``, its canonical id (another server's item took it) ``ItemIdTaken``; then
        nothing is stored. The store hands out ids for every server sharing it."""

    @abstractmethod
    def items(self, after: int = 0) -> list[StoredItem]:
        """The items added while serving with a canonical id above ``after``, by id."""

    @abstractmethod
    def last_item(self) -> int:
        """The largest canonical id of an added item (0 when none): one cheap read, so that a
        server can check on each request whether another one has added items."""

    @abstractmethod
    def get_meta(self, key: str) -> str | None:
        """A value the service keeps about the store itself (what it imported)."""

    @abstractmethod
    def set_meta(self, key: str, value: str) -> None:
        """Set a ``get_meta`` value."""

    @abstractmethod
    def close(self) -> None:
        """Release the store."""


def store_kind(url: str) -> str:
    """``sqlite`` or ``redis``: the kind of store ``url`` names; a ``ConfigError`` otherwise."""
    scheme, _, rest = url.partition(":")
    if scheme == "sqlite" and rest or scheme == "redis" and rest.startswith("//"):
        return scheme
    raise ConfigError(f"--store {url!r}: expected sqlite:PATH or redis://HOST:PORT/DB")


def open_store(url: str) -> Store:
    """The store of ``url``: ``sqlite:PATH`` (the embedded default) or ``redis://host:port/db``
    (shared by several servers)."""
    if store_kind(url) == "sqlite":
        from hymirec.serving.sqlite_store import SQLiteStore

        return SQLiteStore(url.partition(":")[2])
    from hymirec.serving.redis_store import RedisStore

    return RedisStore(url)
