"""The stores (SQLite and Redis, the same tests): idempotent appends, latest events in order,
seen lookups, summaries that never go back in time, staleness, added items, and everything still
there after reopening."""

from __future__ import annotations

import numpy as np
import pytest
from redis_server import redis_server

from hymirec.config import ConfigError
from hymirec.serving.store import Event, ItemIdTaken, RawIdTaken, StoredItem, Summary, open_store


@pytest.fixture(params=["sqlite", "redis"])
def url(request, tmp_path):
    """A fresh store's URL: a new SQLite file, or a new redis-server."""
    if request.param == "sqlite":
        yield f"sqlite:{tmp_path / 'db' / 'serve.sqlite'}"
        return
    with redis_server(tmp_path / "redis") as url:
        yield url


@pytest.fixture()
def store(url):
    store = open_store(url)
    yield store
    store.close()


def _events(*items: int) -> list[Event]:
    return [Event(f"e{i}", item, 100 + i) for i, item in enumerate(items)]


def test_events_are_idempotent_by_id_and_read_latest_first_in_order(store):
    assert store.state("u") is None
    assert store.append("u", _events(5, 6, 7)) == 3
    assert store.append("u", _events(5, 6, 7, 8)) == 1  # a retry plus one new event
    assert store.state("u").events == 4
    assert store.latest("u", 2) == [Event("e2", 7, 102), Event("e3", 8, 103)]
    items, times = store.recent_items("u", 10)
    assert items.tolist() == [5, 6, 7, 8] and times.tolist() == [100, 101, 102, 103]
    assert store.append("v", _events(5)) == 1  # event ids are per user
    assert store.seen("u", np.array([1, 5, 8, 9])).tolist() == [5, 8]
    empty = store.recent_items("nobody", 3)
    assert empty[0].shape == (0,) and empty[0].dtype == np.int64


def test_a_registered_user_without_events(store):
    store.add_user("w")
    store.add_user("w")
    assert store.state("w").events == 0 and store.latest("w", 5) == []


def test_summaries_only_move_forward_and_staleness(store):
    store.append("u", _events(1, 2, 3, 4))
    store.append("v", _events(1, 2))
    assert store.stale(1, 0.0, 10) == []  # no summary yet: the first request computes it
    store.put_summary("u", Summary(b"new", 4, 1000.0))
    store.put_summary("u", Summary(b"old", 2, 2000.0))
    assert store.state("u").summary == Summary(b"new", 4, 1000.0)
    store.put_summary("v", Summary(b"v", 2, 1000.0))
    assert store.stale(1, 0.0, 10) == []  # nothing new
    store.append("u", [Event("late", 9, 200)])
    assert store.stale(2, 0.0, 10) == []  # one event behind: not yet by count ...
    assert store.stale(2, 1500.0, 10) == ["u"]  # ... but by age
    assert store.stale(1, 0.0, 10) == ["u"]


def test_everything_survives_reopening(url):
    store = open_store(url)
    store.append("u", _events(3))
    store.add_item(StoredItem(21, "new", b"\x01\x02", b"\x00\x3c", b"\x00" * 8, {"title": "New"}))
    store.set_meta("k", "v")
    store.close()
    store = open_store(url)
    assert store.latest("u", 1) == [Event("e0", 3, 100)]
    assert store.items() == [StoredItem(21, "new", b"\x01\x02", b"\x00\x3c", b"\x00" * 8, {"title": "New"})]
    assert store.get_meta("k") == "v" and store.get_meta("other") is None
    with pytest.raises(RawIdTaken, match="item 'new' is already stored"):
        store.add_item(StoredItem(22, "new", b"", b"", b"", {}))
    store.close()


def test_item_ids_are_handed_out_once(store):
    """Servers sharing a store race for the next id: the first one stores it, the other is told."""
    assert store.last_item() == 0 and store.items() == []
    store.add_item(StoredItem(21, "a", b"", b"", b"\x00" * 4, {}))
    with pytest.raises(ItemIdTaken, match="item id 21 is already stored"):
        store.add_item(StoredItem(21, "b", b"", b"", b"\x00" * 4, {}))
    store.add_item(StoredItem(22, "b", b"", b"", b"\x00" * 4, {}))
    assert store.last_item() == 22
    assert [i.raw_id for i in store.items()] == ["a", "b"] and [i.item for i in store.items(after=21)] == [22]
    assert store.items(after=22) == []


def test_unknown_store_urls_are_refused():
    with pytest.raises(ConfigError, match="expected sqlite:PATH or redis://HOST:PORT/DB"):
        open_store("mongodb://x")
