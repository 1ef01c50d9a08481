"""Prometheus metrics of one server: requests by route and status, refusals by reason, batch
sizes, latencies.

A registry per server (not the process-global one), so two servers in one process - tests,
the benchmark - count separately.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class ServerMetrics:
    """The counters and histograms `/metrics` shows."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "echogen_requests",
            "HTTP requests by route and status code.",
            ["route", "status"],
            registry=self.registry,
        )
        self.errors = Counter(
            "echogen_request_errors",
            "Requests answered with a 4xx or 5xx status, by route.",
            ["route"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "echogen_request_seconds",
            "Time from request to response, by route.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.refusals = Counter(
            "echogen_refusals",
            "Requests and connections refused or cut short, by reason (too_large, busy, "
            "queue_full, deadline, host, origin, header_timeout, body_timeout, "
            "client_disconnect, connections, bad_request, ...).",
            ["reason"],
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "echogen_batch_size",
            "Masks per model call (dynamic batching).",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.batch_seconds = Histogram(
            "echogen_batch_seconds",
            "Time of one model call, including pre- and post-processing of its batch.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        if status >= 400:
            self.errors.labels(route).inc()
        self.latency.labels(route).observe(seconds)

    def observe_refusal(self, reason: str) -> None:
        self.refusals.labels(reason).inc()

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)

    def text(self) -> bytes:
        """The Prometheus text exposition."""
        return bytes(generate_latest(self.registry))
