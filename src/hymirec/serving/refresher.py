"""The near-line worker: recomputes users' coarse-interest summaries off the request path."""

from __future__ import annotations

import logging
import threading
import time

from hymirec.serving.service import RecommendationService

log = logging.getLogger(__name__)

# Users refreshed per pass at most: a burst of stale users is worked off over several passes.
BATCH = 256


class Refresher:
    """A daemon thread that, every ``refresh_poll_seconds``, recomputes the summaries that are
    ``refresh_events`` events behind, or any event behind and ``refresh_seconds`` old."""

    def __init__(self, service: RecommendationService) -> None:
        self.service = service
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="hymirec-refresher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current pass."""
        self._stop.set()
        self._thread.join()

    def run_once(self) -> int:
        """One pass; how many summaries it recomputed."""
        config = self.service.config
        users = self.service.store.stale(config.refresh_events, time.time() - config.refresh_seconds, BATCH)
        return self.service.refresh(users)

    def _loop(self) -> None:
        while not self._stop.wait(self.service.config.refresh_poll_seconds):
            try:
                self.run_once()
            except Exception:  # the worker must outlive one bad pass; the next one retries
                log.exception("near-line refresh failed")
