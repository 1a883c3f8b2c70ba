"""The HTTP API's request and response bodies (pydantic: validated, and published in OpenAPI)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# Ids are opaque strings of bounded length; nothing in a request is ever read as a path.
ID = Field(min_length=1, max_length=128)


class EventIn(BaseModel):
    """One interaction: the client's event id (a retry with the same id is not stored twice),
    the item's raw id, and its unix time (default: when it arrives)."""

    model_config = ConfigDict(extra="forbid")
    event_id: str = ID
    item: str = ID
    timestamp: int | None = Field(default=None, ge=0, le=2**53)


class EventsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: list[EventIn]


class AppendOut(BaseModel):
    user: str
    added: int
    duplicates: int


class EventOut(BaseModel):
    event_id: str
    item: str
    timestamp: int


class EventsOut(BaseModel):
    user: str
    events: list[EventOut]


class RecommendedItem(BaseModel):
    """A recommended item: raw id, title, score, and which of the user's interests (1..K) put it
    there (None for a popularity fallback)."""

    item: str
    title: str
    score: float
    interest: int | None


class RecommendationsOut(BaseModel):
    """``fallback``: ``popular`` when the user has no events; ``summary``: whether the cached
    coarse interests were found (``hit``), computed now (``miss``) or not needed (``none``);
    ``bytes_read``: what the request read from the store."""

    user: str
    k: int
    merge: Literal["max", "round_robin"]
    fallback: Literal["popular"] | None
    summary: Literal["hit", "miss", "none"]
    bytes_read: int
    items: list[RecommendedItem]
