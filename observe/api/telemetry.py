"""observe's own Prometheus metrics: HTTP requests and the write pipeline.

With several server worker processes (the `workers` setting), `observe serve` points
PROMETHEUS_MULTIPROC_DIR at a fresh directory before the workers start; every process then
writes its counters there and a scrape of /metrics, whichever worker answers it, reports the sum
over all of them (prometheus_client's multiprocess mode).
"""

from __future__ import annotations

import os
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from observe.pipeline.ingest import IngestCounts

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class Telemetry:
    """The metrics of one app; a registry per app, so apps in one process (tests) never share
    counters. Also the batch writer's listener."""

    def __init__(self) -> None:
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
        self.items = Counter(
            "observe_ingested_items",
            "Items received by the write pipeline",
            ["kind", "result"],
            registry=self.registry,
        )
        self.batches = Counter(
            "observe_write_batches", "Write transactions", ["result"], registry=self.registry
        )
        self.retries = Counter(
            "observe_write_retries",
            "Write retries after transient errors",
            registry=self.registry,
        )
        self.overloads = Counter(
            "observe_write_rejected_overload",
            "Batches refused because the write queue was full",
            registry=self.registry,
        )
        self.unpaired = Counter(
            "observe_kserve_unpaired_halves",
            "Payload-logger events dropped because their partner did not come in time",
            ["half"],
            registry=self.registry,
        )
        self.reports = Counter(
            "observe_reports_written",
            "Weekly reports written (each model's and the summaries)",
            registry=self.registry,
        )
        self.alerts = Counter(
            "observe_alerts",
            "Alerts logged about incidents, by finding kind and state (opened, resolved)",
            ["kind", "state"],
            registry=self.registry,
        )
        self.deliveries = Counter(
            "observe_deliveries",
            "Delivery attempts of reports and alerts, by channel and result (sent; retry: "
            "failed and due again; failed: gave up)",
            ["subject", "channel", "result"],
            registry=self.registry,
        )
        self.queue = Gauge(
            "observe_write_queue_items",
            "Items waiting to be written",
            registry=self.registry,
            multiprocess_mode="livesum",
        )

    def scrape_registry(self) -> CollectorRegistry:
        """What /metrics reports: this app's registry, or every worker's in multiprocess mode."""
        if not os.environ.get(MULTIPROC_ENV):
            return self.registry
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return registry

    # The batch writer's listener ------------------------------------------------------------

    def on_commit(self, kind: str, counts: IngestCounts) -> None:
        self.batches.labels("committed").inc()
        self.items.labels(kind, "new").inc(counts.new)
        self.items.labels(kind, "duplicate").inc(counts.duplicates)

    def on_failure(self) -> None:
        self.batches.labels("failed").inc()

    def on_retry(self) -> None:
        self.retries.inc()

    def on_overload(self) -> None:
        self.overloads.inc()

    def on_queue_change(self, delta_items: int) -> None:
        self.queue.inc(delta_items)

    # Reports, alerts and their deliveries ----------------------------------------------------

    def on_reports_written(self, count: int) -> None:
        self.reports.inc(count)

    def on_alert(self, kind: str, state: str) -> None:
        self.alerts.labels(kind, state).inc()

    def on_delivery(self, subject: str, channel: str, result: str) -> None:
        self.deliveries.labels(subject, channel, result).inc()

    def on_unpaired(self, counts: dict[str, int]) -> None:
        """Payload-logger halves dropped unpaired, by half (request, response)."""
        for half, count in counts.items():
            if count:
                self.unpaired.labels(half).inc(count)


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
