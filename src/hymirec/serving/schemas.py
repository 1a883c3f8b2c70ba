"""The HTTP API's request and response bodies (pydantic: validated, and published in OpenAPI)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# Ids are opaque strings of bounded length; nothing in a request is ever read as a path.
ID = Field(min_length=1, max_length=128)


class ErrorOut(BaseModel):
    """A refused request: what was wrong with it."""

    detail: str


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


class ItemIn(BaseModel):
    """A new item: its raw id and its text fields (those the run's item texts are made of)."""

    model_config = ConfigDict(extra="forbid")
    item: str = ID
    fields: dict[str, str] = Field(min_length=1, max_length=32)


class DriftOut(BaseModel):
    """The codebook's reconstruction of recently added items against its fit-time baseline."""

    recent_cosine: float | None
    baseline_cosine: float
    needs_refresh: bool


class ItemOut(BaseModel):
    """An added item: raw id, canonical id, the bytes its codes and scales take, the drift."""

    item: str
    id: int
    code_bytes: int
    drift: DriftOut | None


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
