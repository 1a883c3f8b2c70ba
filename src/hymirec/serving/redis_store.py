"""The shared store: Redis, for several servers serving the same users.

Per user (``hymirec:`` keys): a hash ``u:<user>`` (event count, summary, its ``as_of`` and time),
a list ``ev:<user>`` of events in arrival order, a set ``eid:<user>`` of their ids (idempotency)
and a set ``seen:<user>`` of their items (the seen lookup). An append is one Lua script, so it
is atomic: each new id is added to all three and the count at once, a repeated id to none.
Added items: a hash of raw id -> canonical id, one of id -> record and the largest id, written by
one script that refuses a taken raw id or canonical id (servers race for the next id; one wins).
Durability is the server's: an append is acknowledged after Redis has applied it, and it
survives a crash of Redis only with ``appendonly yes`` and ``appendfsync always`` (what the
tests run it with); a crash of the hymirec server loses nothing Redis has.
"""

from __future__ import annotations

import json

import numpy as np
import redis

from hymirec.serving.store import Event, ItemIdTaken, RawIdTaken, Store, StoredItem, Summary, UserState

PREFIX = "hymirec:"
SUMMARISED = PREFIX + "summarised"  # users with a summary (the near-line worker's candidates)
ITEM_IDS, ITEMS, LAST_ITEM = PREFIX + "item_ids", PREFIX + "items", PREFIX + "last_item"

APPEND = """
local added = 0
for i = 1, #ARGV, 3 do
  if redis.call('SADD', KEYS[1], ARGV[i]) == 1 then
    redis.call('RPUSH', KEYS[2], cjson.encode({ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])}))
    redis.call('SADD', KEYS[3], ARGV[i + 1])
    added = added + 1
  end
end
redis.call('HINCRBY', KEYS[4], 'events', added)
return added
"""

# Store a summary unless the stored one was computed from more events.
PUT_SUMMARY = """
local stored = redis.call('HGET', KEYS[1], 'summary_as_of')
if stored and tonumber(stored) > tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'summary', ARGV[1], 'summary_as_of', ARGV[2], 'summary_at', ARGV[3])
redis.call('SADD', KEYS[2], ARGV[4])
return 1
"""

# Add an item unless its raw id (1) or canonical id (2) is taken; 0 when added.
ADD_ITEM = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 1 end
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return 2 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
local last = tonumber(redis.call('GET', KEYS[3]) or '0')
if tonumber(ARGV[2]) > last then redis.call('SET', KEYS[3], ARGV[2]) end
return 0
"""


def _keys(user: str) -> dict[str, str]:
    return {name: f"{PREFIX}{name}:{user}" for name in ("u", "ev", "eid", "seen")}


class RedisStore(Store):
    """A ``Store`` in the Redis server at ``url`` (``redis://host:port/db``)."""

    def __init__(self, url: str) -> None:
        self._db = redis.Redis.from_url(url)
        self._db.ping()  # refused at start, not at the first request
        self._append = self._db.register_script(APPEND)
        self._put_summary = self._db.register_script(PUT_SUMMARY)
        self._add_item = self._db.register_script(ADD_ITEM)

    def add_user(self, user: str) -> None:
        self._db.hsetnx(_keys(user)["u"], "events", 0)

    def append_many(self, batches: dict[str, list[Event]]) -> int:
        added = 0
        for user, events in batches.items():
            keys = _keys(user)
            args = [value for e in events for value in (e.event_id, e.item, e.timestamp)]
            added += int(self._append(keys=[keys["eid"], keys["ev"], keys["seen"], keys["u"]], args=args))
        return added

    def state(self, user: str) -> UserState | None:
        fields = self._db.hgetall(_keys(user)["u"])
        if not fields:
            return None
        summary = None
        if b"summary" in fields:
            summary = Summary(fields[b"summary"], int(fields[b"summary_as_of"]), float(fields[b"summary_at"]))
        return UserState(int(fields[b"events"]), summary)

    def _latest(self, user: str, limit: int) -> list[list]:
        return [json.loads(row) for row in self._db.lrange(_keys(user)["ev"], -limit, -1)]

    def latest(self, user: str, limit: int) -> list[Event]:
        return [Event(event_id, item, timestamp) for event_id, item, timestamp in self._latest(user, limit)]

    def recent_items(self, user: str, limit: int) -> tuple[np.ndarray, np.ndarray]:
        table = np.array([row[1:] for row in self._latest(user, limit)], np.int64).reshape(-1, 2)
        return table[:, 0].copy(), table[:, 1].copy()

    def seen(self, user: str, items: np.ndarray) -> np.ndarray:
        if not len(items):
            return np.zeros(0, np.int64)
        member = self._db.smismember(_keys(user)["seen"], [int(i) for i in items])
        return np.sort(np.asarray(items, np.int64)[np.asarray(member, bool)])

    def put_summary(self, user: str, summary: Summary) -> None:
        self._put_summary(keys=[_keys(user)["u"], SUMMARISED],
                          args=[summary.data, summary.as_of, repr(summary.updated), user])

    def stale(self, min_new: int, older_than: float, limit: int) -> list[str]:
        users = [u.decode() for u in self._db.smembers(SUMMARISED)]
        pipe = self._db.pipeline()
        for user in users:
            pipe.hmget(_keys(user)["u"], "events", "summary_as_of", "summary_at")
        out = []
        for user, (events, as_of, at) in zip(users, pipe.execute()):
            behind = int(events) - int(as_of)
            if behind > 0 and (behind >= min_new or float(at) < older_than):
                out.append(user)
        return sorted(out)[:limit]

    def add_item(self, item: StoredItem) -> None:
        record = {"raw_id": item.raw_id, "codes": item.codes.hex(), "scales": item.scales.hex(),
                  "vector": item.vector.hex(), "fields": item.fields}
        taken = int(self._add_item(keys=[ITEM_IDS, ITEMS, LAST_ITEM], args=[item.raw_id, item.item, json.dumps(record)]))
        if taken == 1:
            raise RawIdTaken(f"item '{item.raw_id}' is already stored")
        if taken == 2:
            raise ItemIdTaken(f"item id {item.item} is already stored")

    def items(self, after: int = 0) -> list[StoredItem]:
        if self.last_item() <= after:
            return []
        rows = {int(k): json.loads(v) for k, v in self._db.hgetall(ITEMS).items()}
        return [StoredItem(item, r["raw_id"], bytes.fromhex(r["codes"]), bytes.fromhex(r["scales"]),
                           bytes.fromhex(r["vector"]), r["fields"]) for item, r in sorted(rows.items()) if item > after]

    def last_item(self) -> int:
        return int(self._db.get(LAST_ITEM) or 0)

    def get_meta(self, key: str) -> str | None:
        value = self._db.hget(PREFIX + "meta", key)
        return None if value is None else value.decode()

    def set_meta(self, key: str, value: str) -> None:
        self._db.hset(PREFIX + "meta", key, value)

    def close(self) -> None:
        self._db.close()
