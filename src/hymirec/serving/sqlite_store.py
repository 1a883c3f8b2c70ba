"""The embedded store: one SQLite file in WAL mode.

WAL lets readers proceed beside the one writer; ``synchronous=FULL`` makes each commit durable
before ``append`` returns, so an acknowledged event survives ``kill -9`` (and a power cut). One
connection serves every thread under a lock: the server's writes are small and SQLite has one
writer anyway. Reading a user's latest events is an index range scan on ``(user, seq)``, and
asking whether a user has seen an item one probe of ``(user, item)``: neither cost grows with
the length of the history.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import numpy as np

from hymirec.serving.store import Event, ItemIdTaken, RawIdTaken, Store, StoredItem, Summary, UserState

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    user TEXT PRIMARY KEY, events INTEGER NOT NULL DEFAULT 0,
    summary BLOB, summary_as_of INTEGER, summary_at REAL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, user TEXT NOT NULL, event_id TEXT NOT NULL,
    item INTEGER NOT NULL, timestamp INTEGER NOT NULL, UNIQUE (user, event_id));
CREATE INDEX IF NOT EXISTS events_by_user ON events (user, seq);
CREATE INDEX IF NOT EXISTS events_by_item ON events (user, item);
CREATE TABLE IF NOT EXISTS items (
    item INTEGER PRIMARY KEY, raw_id TEXT NOT NULL UNIQUE, codes BLOB NOT NULL, scales BLOB NOT NULL,
    vector BLOB NOT NULL, fields TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class SQLiteStore(Store):
    """A ``Store`` in the SQLite file ``path`` (created with its folder when missing)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Transactions are explicit (BEGIN ... COMMIT), not the module's implicit ones.
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def _write(self, statements) -> None:
        """Run ``statements(cursor)`` in one immediate transaction, committed before returning."""
        with self._lock:
            cursor = self._db.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                statements(cursor)
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            cursor.execute("COMMIT")

    def _read(self, sql: str, args: tuple) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def add_user(self, user: str) -> None:
        self._write(lambda c: c.execute("INSERT OR IGNORE INTO users (user) VALUES (?)", (user,)))

    def append_many(self, batches: dict[str, list[Event]]) -> int:
        added = 0

        def statements(cursor: sqlite3.Cursor) -> None:
            nonlocal added
            for user, events in batches.items():
                cursor.execute("INSERT OR IGNORE INTO users (user) VALUES (?)", (user,))
                before = self._db.total_changes
                cursor.executemany(
                    "INSERT OR IGNORE INTO events (user, event_id, item, timestamp) VALUES (?, ?, ?, ?)",
                    [(user, e.event_id, e.item, e.timestamp) for e in events])
                new = self._db.total_changes - before
                cursor.execute("UPDATE users SET events = events + ? WHERE user = ?", (new, user))
                added += new

        self._write(statements)
        return added

    def state(self, user: str) -> UserState | None:
        rows = self._read("SELECT events, summary, summary_as_of, summary_at FROM users WHERE user = ?", (user,))
        if not rows:
            return None
        events, data, as_of, updated = rows[0]
        return UserState(events, None if data is None else Summary(bytes(data), as_of, updated))

    def latest(self, user: str, limit: int) -> list[Event]:
        rows = self._read("SELECT event_id, item, timestamp FROM events WHERE user = ? ORDER BY seq DESC LIMIT ?",
                          (user, limit))
        return [Event(*row) for row in reversed(rows)]

    def recent_items(self, user: str, limit: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self._read("SELECT item, timestamp FROM events WHERE user = ? ORDER BY seq DESC LIMIT ?",
                          (user, limit))
        table = np.array(rows[::-1], np.int64).reshape(-1, 2)
        return table[:, 0].copy(), table[:, 1].copy()

    def seen(self, user: str, items: np.ndarray) -> np.ndarray:
        found: list[int] = []
        ids = [int(i) for i in items]
        # Below SQLite's limit on bound parameters.
        for lo in range(0, len(ids), 500):
            chunk = ids[lo: lo + 500]
            marks = ", ".join(["(?)"] * len(chunk))
            # EXISTS stops at a candidate's first event: one index probe per candidate, however
            # often the user consumed it (IN ... DISTINCT walks every repeat).
            rows = self._read(f"WITH candidates(item) AS (VALUES {marks}) SELECT item FROM candidates "
                              "WHERE EXISTS (SELECT 1 FROM events WHERE user = ? AND events.item = candidates.item)",
                              (*chunk, user))
            found += [row[0] for row in rows]
        return np.array(sorted(found), np.int64)

    def put_summary(self, user: str, summary: Summary) -> None:
        self._write(lambda c: c.execute(
            "UPDATE users SET summary = ?, summary_as_of = ?, summary_at = ? "
            "WHERE user = ? AND (summary_as_of IS NULL OR summary_as_of <= ?)",
            (summary.data, summary.as_of, summary.updated, user, summary.as_of)))

    def stale(self, min_new: int, older_than: float, limit: int) -> list[str]:
        rows = self._read(
            "SELECT user FROM users WHERE summary_as_of IS NOT NULL AND events > summary_as_of "
            "AND (events - summary_as_of >= ? OR summary_at < ?) LIMIT ?", (min_new, older_than, limit))
        return [row[0] for row in rows]

    def add_item(self, item: StoredItem) -> None:
        try:
            self._write(lambda c: c.execute(
                "INSERT INTO items (item, raw_id, codes, scales, vector, fields) VALUES (?, ?, ?, ?, ?, ?)",
                (item.item, item.raw_id, item.codes, item.scales, item.vector, json.dumps(item.fields))))
        except sqlite3.IntegrityError as exc:
            if "items.raw_id" in str(exc):
                raise RawIdTaken(f"item '{item.raw_id}' is already stored") from exc
            raise ItemIdTaken(f"item id {item.item} is already stored") from exc

    def items(self, after: int = 0) -> list[StoredItem]:
        rows = self._read("SELECT item, raw_id, codes, scales, vector, fields FROM items WHERE item > ? ORDER BY item",
                          (after,))
        return [StoredItem(item, raw, bytes(codes), bytes(scales), bytes(vector), json.loads(fields))
                for item, raw, codes, scales, vector, fields in rows]

    def last_item(self) -> int:
        return self._read("SELECT COALESCE(MAX(item), 0) FROM items", ())[0][0]

    def get_meta(self, key: str) -> str | None:
        rows = self._read("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        self._write(lambda c: c.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value)))

    def close(self) -> None:
        with self._lock:
            self._db.close()
