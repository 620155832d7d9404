"""Prometheus metrics, served over HTTP on their own port.

Each server owns its `CollectorRegistry` (never the process-wide default), so several servers in
one process, as in the tests, keep separate counts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 60, 120)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class ServiceMetrics:
    """Requests, errors by code, queue depth, batch sizes and latencies of one server."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "faceshield_requests", "Calls received; stream items count one each.", ["rpc"], registry=r
        )
        self.responses = Counter(
            "faceshield_responses", "Answers sent, by status code (OK included).", ["rpc", "code"], registry=r
        )
        self.latency = Histogram(
            "faceshield_request_latency_seconds",
            "Time from request to answer.",
            ["rpc"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_seconds = Histogram(
            "faceshield_queue_seconds", "Time an image waited for the device.", buckets=LATENCY_BUCKETS, registry=r
        )
        self.batch_seconds = Histogram(
            "faceshield_batch_seconds", "Time the engine spent on one batch.", buckets=LATENCY_BUCKETS, registry=r
        )
        self.batch_size = Histogram(
            "faceshield_batch_size", "Images per engine batch.", buckets=BATCH_BUCKETS, registry=r
        )
        self.depth = Gauge("faceshield_queue_depth", "Images waiting for the device.", registry=r)
        self.dropped = Counter(
            "faceshield_items_dropped", "Images dropped before they were done.", ["reason"], registry=r
        )
        self.in_flight = Gauge("faceshield_in_flight_calls", "Calls being handled.", registry=r)
        self._http: WSGIServer | None = None

    # BatchObserver
    def queue_depth(self, depth: int) -> None:
        self.depth.set(depth)

    def batch_done(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)

    def item_dropped(self, reason: str) -> None:
        self.dropped.labels(reason).inc()

    def watch_engine(self, counters: Callable[[], dict[str, int]]) -> None:
        """Export the engine's own counters (image steps, images, cancelled items) on scrape."""
        self.registry.register(_EngineCollector(counters))

    # HTTP exposition
    def serve(self, host: str, port: int) -> int:
        """Start the /metrics endpoint on a daemon thread; return its port."""
        self._http, _ = start_http_server(port, addr=host, registry=self.registry)
        bound = self._http.server_address[1]
        log.info("metrics on http://%s:%d/metrics", host, bound)
        return bound

    def close(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """A sample's current value (tests and the load script read counts this way)."""
        v = self.registry.get_sample_value(name, labels or {})
        return 0.0 if v is None else v


class _EngineCollector:
    def __init__(self, counters: Callable[[], dict[str, int]]):
        self.counters = counters

    def collect(self):
        c = self.counters() or {}
        for name, help_text in (
            ("image_steps", "Generator forward+backward passes, per image and target."),
            ("images_protected", "Images the engine protected."),
            ("items_cancelled", "Images the engine dropped mid-batch (deadline or cancel)."),
        ):
            m = CounterMetricFamily(f"faceshield_engine_{name}", help_text)
            m.add_metric([], float(c.get(name, 0)))
            yield m
        ready = GaugeMetricFamily("faceshield_engine_loaded", "1 once the models are loaded.")
        ready.add_metric([], 1.0 if c else 0.0)
        yield ready
