"""The recommender service, whatever carries its requests: events in, recommendations out.

It holds a restored run, its catalogue, a store and the user encoder the model calls for. A
recommendation reads the user's latest ``encoder.reads`` events and, for HyMiRec, the cached
coarse-interest summary (a miss computes it once from the latest ``max_len`` events and stores
it); items the user has seen are left out. A user with no events gets the most popular items,
and the response says so. Bytes read from the store are counted per request (beside them, each
request reads the store's last added item id: servers sharing a store take in each other's new
items before they answer).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from hymirec.runs.recommend import Recommendation
from hymirec.runs.restored import RestoredRun
from hymirec.serving.catalogue import Catalogue
from hymirec.serving.cold_start import ItemAdder, NewItem
from hymirec.serving.config import ServeConfig
from hymirec.serving.metrics import ServingMetrics
from hymirec.serving.store import EVENT_BYTES, SEEN_BYTES, Event, ItemIdTaken, RawIdTaken, Store, StoredItem, Summary
from hymirec.serving.users import user_encoder

# The store's meta key saying which run's dataset histories it holds.
IMPORTED = "imported_history"


class UnknownUser(LookupError):
    """A user the store has never seen."""


class ItemExists(ValueError):
    """A raw item id the catalogue already holds."""


@dataclass(frozen=True)
class NewEvent:
    """An event as a client sends it: raw item id, optional unix time (default: arrival)."""

    event_id: str
    item: str
    timestamp: int | None = None


@dataclass(frozen=True)
class Recommendations:
    """A served list: the items, ``fallback`` (``"popular"`` for a user with no events, else
    None), ``summary`` (``hit``, ``miss`` or ``none``: no summary needed) and bytes read."""

    items: list[Recommendation]
    fallback: str | None
    summary: str
    bytes_read: int


class RecommendationService:
    """``append`` / ``events`` / ``recommend`` / ``refresh`` over a run, a store and metrics."""

    def __init__(self, run: RestoredRun, store: Store, config: ServeConfig, metrics: ServingMetrics) -> None:
        self.run, self.store, self.config, self.metrics = run, store, config, metrics
        self.catalogue = Catalogue.of_run(run, config.index)
        self.encoder = user_encoder(run)
        self.adder = ItemAdder(run)
        self._adding = threading.Lock()
        # One model pass at a time: concurrent passes fight over the cores and the GIL, which on
        # a 2-core CPU cost p99 (docs/serving.md); requests still read the store concurrently.
        self._computing = threading.Lock()
        self.sync_items()  # the items added before a restart, or by other servers on the store
        metrics.model.info({"model": run.config.model_name, "run": str(run.run_dir),
                            "encoder": type(self.encoder).__name__})

    def import_history(self) -> int:
        """Put the run's dataset histories into the store as events (ids ``data-<n>``), once per
        store: the users the model was trained and evaluated on, in the state evaluation saw."""
        key = str(self.run.run_dir.resolve())
        if self.store.get_meta(IMPORTED) == key:
            return 0
        dataset, sequences = self.run.split.dataset, self.run.split.sequences
        batches = {}
        for user, raw in enumerate(dataset.users["raw_id"].astype(str), start=1):
            items, times = sequences.user(user)
            batches[raw] = [Event(f"data-{n}", int(i), int(t)) for n, (i, t) in enumerate(zip(items, times))]
        added = self.store.append_many(batches)
        self.store.set_meta(IMPORTED, key)
        return added

    def append(self, user: str, events: list[NewEvent]) -> tuple[int, int]:
        """Store ``events`` for ``user`` (registered if new); ``(added, duplicates)``, durable on
        return. An unknown item fails the whole request before anything is stored."""
        now = int(time.time())
        self.sync_items()  # an item another server added may be named
        rows = [Event(e.event_id, self.catalogue.item(e.item), now if e.timestamp is None else e.timestamp)
                for e in events]
        added = self.store.append(user, rows) if rows else 0
        if not rows:
            self.store.add_user(user)
        self.metrics.events.labels("added").inc(added)
        self.metrics.events.labels("duplicate").inc(len(rows) - added)
        return added, len(rows) - added

    def events(self, user: str, limit: int) -> list[tuple[str, str, int]]:
        """The user's ``limit`` latest events, oldest first: ``(event id, raw item, time)``."""
        self._state(user)
        return [(e.event_id, self.catalogue.raw_ids[e.item - 1], e.timestamp) for e in self.store.latest(user, limit)]

    def recommend(self, user: str, k: int, merge: str | None = None) -> Recommendations:
        """The user's top ``k``, merged by ``merge`` (default: the run's ``eval.merge``)."""
        state = self._state(user)
        self.sync_items()  # items another server added are recommendable here too
        items, times = self.store.recent_items(user, self.encoder.reads)
        bytes_read = EVENT_BYTES * len(items)
        if not len(items):
            return Recommendations(self.catalogue.popular(k, items), "popular", "none", bytes_read)
        summary, outcome = None, "none"
        if self.encoder.needs_summary(state.events):
            stored = state.summary
            if stored is not None and self.encoder.accepts(stored.data):
                summary, outcome = stored.data, "hit"
                bytes_read += len(summary)
            else:
                summary, read = self._summarise(user, state.events)
                outcome = "miss"
                bytes_read += EVENT_BYTES * read  # the long history, read once
            self.metrics.summary.labels(outcome).inc()
        merge = merge or self.run.merge
        # Beyond the events read, the store says which candidates the user has seen.
        seen = None if state.events <= len(items) else (lambda candidates: self.store.seen(user, candidates))
        with self._computing:
            vectors = self.encoder.interests(items, times, summary)
            top, found = self.catalogue.top_k(vectors, items, k, merge, seen)
        bytes_read += SEEN_BYTES * found
        self.metrics.bytes_read.observe(bytes_read)
        return Recommendations(top, None, outcome, bytes_read)

    def add_item(self, raw_id: str, fields: dict[str, str]) -> NewItem:
        """Add a new item from its fields (the cold-start path, ``cold_start``): recommendable
        from the next request on, here and on every server sharing the store. The store hands
        out its id: when another server took the next one first, this one takes that item in
        and tries the id after it."""
        with self._adding:  # one addition at a time in this server
            self._sync()
            if raw_id in self.catalogue:
                raise ItemExists(f"item '{raw_id}' is already in the catalogue")
            vector = self.adder.encode(fields)
            codes, scales = self.adder.codes(vector)
            while True:
                stored = StoredItem(len(self.catalogue) + 1, raw_id, codes.tobytes(),
                                    b"" if scales is None else scales.tobytes(), vector.tobytes(),
                                    fields)
                try:
                    self.store.add_item(stored)
                    break
                except RawIdTaken as exc:  # another server added the same raw id first
                    raise ItemExists(f"item '{raw_id}' is already in the catalogue") from exc
                except ItemIdTaken:
                    self._sync()
            return next(new for new in self._sync() if new.item == stored.item)

    def sync_items(self) -> list[NewItem]:
        """Grow the model and catalogue by the stored items they lack (added before a restart
        or by another server), in id order; one cheap read when there are none."""
        if self.store.last_item() <= len(self.catalogue):
            return []
        with self._adding:
            return self._sync()

    def _sync(self) -> list[NewItem]:
        grown = []
        for stored in self.store.items(after=len(self.catalogue)):
            new = self.adder.grow(np.frombuffer(stored.vector, np.float32))
            if new.item != stored.item:  # ids are handed out one after another; a gap is a bug
                raise RuntimeError(f"stored item id {stored.item} grew the model to id {new.item}")
            self._register(stored.raw_id, stored.fields, new)
            grown.append(new)
        return grown

    @torch.no_grad()
    def _register(self, raw_id: str, fields: dict[str, str], new: NewItem) -> None:
        """Put an item the model has grown by into the catalogue, scored as the model scores it."""
        with self.run.autocast():
            vector = self.run.model.embed_items(torch.tensor([new.item], device=self.run.device)).float().cpu()[0]
        if self.run.cosine:
            vector = F.normalize(vector, dim=-1)
        self.catalogue.add(new.item, raw_id, fields.get("title", raw_id), vector)

    def refresh(self, users: list[str]) -> int:
        """Recompute the summaries of ``users`` (the near-line worker's job); how many."""
        now, oldest = time.time(), 0.0
        for user in users:
            state = self.store.state(user)
            if state is not None and state.summary is not None:
                oldest = max(oldest, now - state.summary.updated)
            self._summarise(user, state.events if state else 0)
        self.metrics.refreshes.inc(len(users))
        if users:
            self.metrics.refresh_lag.set(oldest)
        return len(users)

    def _summarise(self, user: str, events: int) -> tuple[bytes, int]:
        """Compute and store the user's summary; the summary and how many events it read."""
        items, _ = self.store.recent_items(user, self.run.max_len)
        data = self.encoder.summarise(items)
        self.store.put_summary(user, Summary(data, events, time.time()))
        return data, len(items)

    def _state(self, user: str):
        state = self.store.state(user)
        if state is None:
            raise UnknownUser(f"user '{user}' is unknown: post their events first")
        return state
