"""The server's Prometheus metrics, in a registry of its own (one per app, so that several apps
in one process -- the tests -- never share counters)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest

# Request latency buckets (seconds): the targets are tens of milliseconds at p99.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0)
BYTES_BUCKETS = (256, 512, 1024, 2048, 4096, 8192, 16384, 65536, 262144)


class ServingMetrics:
    """Request counts and latency per route, summary cache hits and misses, bytes read from the
    store per recommendation, events added and ignored, near-line refreshes and their lag, and
    which model and run are served."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("hymirec_requests", "HTTP requests by route and status", ["route", "status"],
                                registry=r)
        self.latency = Histogram("hymirec_request_seconds", "request latency by route", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.summary = Counter("hymirec_summary_cache", "coarse-interest summary lookups on the request path",
                               ["result"], registry=r)
        self.bytes_read = Histogram("hymirec_bytes_read_per_request", "bytes read from the store per recommendation",
                                    buckets=BYTES_BUCKETS, registry=r)
        self.events = Counter("hymirec_events", "events received, by result", ["result"], registry=r)
        self.refreshes = Counter("hymirec_summary_refreshes", "summaries recomputed near-line", registry=r)
        self.refresh_lag = Gauge("hymirec_summary_refresh_lag_seconds",
                                 "age of the oldest summary the last near-line pass replaced", registry=r)
        self.model = Info("hymirec_model", "the model and run served", registry=r)

    def text(self) -> bytes:
        """Everything, in the Prometheus text format."""
        return generate_latest(self.registry)
