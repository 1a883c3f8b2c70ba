"""The settings of ``hymirec serve``."""

from __future__ import annotations

from dataclasses import dataclass

from hymirec.config import ConfigError, require_positive
from hymirec.serving.store import store_kind

LOOPBACK = "127.0.0.1"
# Candidate retrieval (``serving.retrieval``): every item scored, or a faiss HNSW graph.
INDEXES = ("exact", "hnsw")


@dataclass
class ServeConfig:
    """``store``: where events and summaries live (``sqlite:PATH``); ``api_key``: when set, every
    route but the health checks needs it in the ``X-API-Key`` header; ``max_k``: the largest list
    a request may ask for; ``max_body_bytes`` / ``max_events``: the largest request body and the
    most events one request may append; ``refresh_events`` / ``refresh_seconds``: a user's
    coarse-interest summary is recomputed near-line once it is that many events behind, or has
    any new event and is that old; ``refresh_poll_seconds``: how often the worker looks;
    ``import_history``: load the run's dataset histories into the store at start (idempotent);
    ``index``: candidate retrieval, ``exact`` or ``hnsw`` (``serving.retrieval``); ``threads``:
    PyTorch's intra-op threads in the server (0: one per core). One is the CPU default: a request's
    model pass is small, and several threads per pass spin against the other requests' work."""

    store: str = "sqlite:serve.sqlite"
    host: str = LOOPBACK
    port: int = 8000
    api_key: str | None = None
    max_k: int = 1000
    max_body_bytes: int = 1 << 20
    max_events: int = 1000
    refresh_events: int = 5
    refresh_seconds: float = 60.0
    refresh_poll_seconds: float = 0.5
    import_history: bool = True
    index: str = "exact"
    threads: int = 1

    def __post_init__(self) -> None:
        store_kind(self.store)
        require_positive(self, ("max_k", "max_body_bytes", "max_events", "refresh_events"), ConfigError, "serve ")
        if self.threads < 0:
            raise ConfigError(f"serve threads must be >= 0 (0: one per core), got {self.threads}")
        if self.refresh_seconds <= 0 or self.refresh_poll_seconds <= 0:
            raise ConfigError("serve refresh_seconds and refresh_poll_seconds must be > 0")
        if self.index not in INDEXES:
            raise ConfigError(f"serve index must be one of {INDEXES}, got {self.index!r}")
        if not 0 < self.port < 65536:
            raise ConfigError(f"serve port must be in 1..65535, got {self.port}")
