"""observe's own Prometheus metrics: HTTP requests and the write pipeline."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from observe.pipeline.writer import Writer


class WriterCollector(Collector):
    """Exposes the writer's counters at scrape time."""

    def __init__(self, writer: Callable[[], Writer | None]) -> None:
        self._writer = writer

    def collect(self) -> Iterator[Any]:
        writer = self._writer()
        if writer is None:
            return
        stats = writer.stats
        items = CounterMetricFamily(
            "observe_ingested_items",
            "Items received by the write pipeline",
            labels=["kind", "result"],
        )
        for kind, count in stats.items_new.items():
            items.add_metric([kind, "new"], count)
        for kind, count in stats.items_duplicate.items():
            items.add_metric([kind, "duplicate"], count)
        yield items
        batches = CounterMetricFamily(
            "observe_write_batches", "Write transactions", labels=["result"]
        )
        batches.add_metric(["committed"], stats.batches_committed)
        batches.add_metric(["failed"], stats.batches_failed)
        yield batches
        yield CounterMetricFamily(
            "observe_write_retries", "Write retries after transient errors", value=stats.retries
        )
        yield CounterMetricFamily(
            "observe_write_rejected_overload",
            "Batches refused because the queue was full",
            value=stats.rejected_overload,
        )
        yield GaugeMetricFamily(
            "observe_write_queue_items", "Items waiting to be written", value=writer.queued_items()
        )


class Telemetry:
    """A registry per app, so several apps (tests) never share counters."""

    def __init__(self, writer: Callable[[], Writer | None]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "observe_http_requests",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "observe_http_request_duration_seconds",
            "HTTP request duration",
            ["method", "route"],
            registry=self.registry,
        )
        self.registry.register(WriterCollector(writer))


class TelemetryMiddleware:
    """Counts requests per route template (not per raw path, to bound label cardinality)."""

    def __init__(self, app: ASGIApp, telemetry: Telemetry) -> None:
        self.app = app
        self.telemetry = telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def record_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            self.telemetry.requests.labels(method, template, str(status["code"])).inc()
            self.telemetry.latency.labels(method, template).observe(time.perf_counter() - started)
