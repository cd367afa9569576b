"""The real OpenTelemetry Python SDK and its OTLP/HTTP exporter send spans to a running
`observe serve` (a subprocess on a loopback port, on both databases); the read API returns them.

The exporter authenticates with an observe API key passed as `headers=` or through
OTEL_EXPORTER_OTLP_HEADERS, exactly as an instrumented service would be configured.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from observe.auth import Scope
from observe.db.engine import Database
from observe.pipeline.keys import create_key
from tests.integration.test_reliability import ServerProcess, observe_server

MODEL = "fraud-scorer"
NUM_TRACES = 30
MS = 10**6

pytestmark = pytest.mark.slow


@pytest.fixture
def server(db: Database, tmp_path: Path) -> Iterator[ServerProcess]:
    with observe_server(db, tmp_path) as running:
        yield running


@pytest.fixture
def key(db: Database) -> str:
    plain, _ = create_key(db.write_sessions, name="otel", scopes=[Scope.INGEST, Scope.READ])
    return plain


def record_model_traces(tracer: Any, count: int, start_ns: int) -> list[int]:
    """`count` model requests with explicit times: trace i's lookup takes 2 + i ms. Returns the
    trace ids."""
    trace_ids = []
    for i in range(count):
        begin = start_ns + i * 100 * MS
        root = tracer.start_span(
            "predict",
            kind=SpanKind.SERVER,
            start_time=begin,
            attributes={"model.name": MODEL, "request.number": i},
        )
        context = trace.set_span_in_context(root)
        lookup = tracer.start_span("feature_store.lookup", context=context, start_time=begin + MS)
        lookup.end(end_time=begin + (3 + i) * MS)
        forward = tracer.start_span("forward", context=context, start_time=begin + (3 + i) * MS)
        forward.end(end_time=begin + (13 + i) * MS)
        if i % 10 == 0:
            root.set_status(Status(StatusCode.ERROR, "bad input"))
        root.end(end_time=begin + (14 + i) * MS)
        trace_ids.append(root.get_span_context().trace_id)
    return trace_ids


def provider(exporter: Any, processor: type = BatchSpanProcessor) -> TracerProvider:
    tracer_provider = TracerProvider(resource=Resource.create({"service.name": "fraud-scorer-api"}))
    tracer_provider.add_span_processor(processor(exporter))
    return tracer_provider


def read(server: ServerProcess, key: str, path: str, **params: Any) -> Any:
    response = httpx.get(
        f"{server.url}{path}", params=params, headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_the_batch_exporter_delivers_spans_that_read_back_as_trees(
    server: ServerProcess, key: str
) -> None:
    exporter = OTLPSpanExporter(
        endpoint=f"{server.url}/v1/traces",
        headers={"Authorization": f"Bearer {key}"},
        compression=Compression.Gzip,
    )
    tracer_provider = provider(exporter)
    start_ns = time.time_ns() - 60 * 10**9
    trace_ids = record_model_traces(tracer_provider.get_tracer("test"), NUM_TRACES, start_ns)

    assert tracer_provider.force_flush(30_000)
    tracer_provider.shutdown()

    window = {"start": "-2h"}
    listed = read(server, key, "/api/v1/traces", model=MODEL, limit=5, **window)["traces"]
    slowest = NUM_TRACES - 1
    assert [t["trace_id"] for t in listed] == [
        f"{trace_ids[i]:032x}" for i in range(slowest, slowest - 5, -1)
    ]
    assert listed[0]["duration_ms"] == pytest.approx(14.0 + slowest)
    assert (listed[0]["root_name"], listed[0]["num_spans"]) == ("predict", 3)
    errors = read(server, key, "/api/v1/traces", model=MODEL, has_error="true", **window)
    assert len(errors["traces"]) == NUM_TRACES // 10

    tree = read(server, key, f"/api/v1/traces/{trace_ids[slowest]:032x}")
    assert [(s["name"], s["depth"], s["duration_ms"]) for s in tree["spans"]] == [
        ("predict", 0, pytest.approx(14.0 + slowest)),
        ("feature_store.lookup", 1, pytest.approx(2.0 + slowest)),
        ("forward", 1, pytest.approx(10.0)),
    ]
    assert tree["spans"][0]["attributes"]["request.number"] == slowest
    assert tree["spans"][0]["resource_attributes"]["service.name"] == "fraud-scorer-api"
    assert {s["model"] for s in tree["spans"]} == {MODEL}

    series = read(
        server,
        key,
        "/api/v1/spans/latency",
        model=MODEL,
        name="feature_store.lookup",
        bucket="1d",
        percentile=100,
        **window,
    )["series"]
    assert sum(point["num_spans"] for point in series[0]["points"]) == NUM_TRACES
    assert max(point["p100"] for point in series[0]["points"]) == pytest.approx(
        2.0 + slowest, rel=0.01
    )


def finished_spans(count: int) -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    tracer_provider = provider(memory, SimpleSpanProcessor)
    record_model_traces(tracer_provider.get_tracer("test"), count, time.time_ns() - 10**9)
    tracer_provider.shutdown()
    return list(memory.get_finished_spans())


def test_the_exporter_takes_its_key_and_endpoint_from_the_environment(
    server: ServerProcess, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"{server.url}/v1/traces")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"x-api-key={key}")
    spans = finished_spans(2)

    assert OTLPSpanExporter().export(spans) is SpanExportResult.SUCCESS

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"Authorization=Bearer%20{key}")
    assert OTLPSpanExporter().export(spans) is SpanExportResult.SUCCESS

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer%20obs_not-a-key")
    assert OTLPSpanExporter().export(spans) is SpanExportResult.FAILURE

    listed = read(server, key, "/api/v1/traces", model=MODEL, start="-1h")["traces"]
    assert len(listed) == 2


def test_traces_without_a_model_attribute_are_linked_by_records(
    server: ServerProcess, key: str
) -> None:
    memory = InMemorySpanExporter()
    tracer_provider = provider(memory, SimpleSpanProcessor)
    tracer = tracer_provider.get_tracer("gateway")
    with tracer.start_as_current_span("GET /score", kind=SpanKind.SERVER) as root:
        with tracer.start_as_current_span("call model"):
            time.sleep(0.002)
        trace_id = f"{root.get_span_context().trace_id:032x}"
    tracer_provider.shutdown()
    exporter = OTLPSpanExporter(endpoint=f"{server.url}/v1/traces", headers={"X-API-Key": key})
    assert exporter.export(list(memory.get_finished_spans())) is SpanExportResult.SUCCESS
    assert read(server, key, "/api/v1/traces", model=MODEL, start="-1h")["traces"] == []

    record = {
        "model": MODEL,
        "model_version": "v3",
        "timestamp": dt.datetime.now(dt.UTC).isoformat(),
        "request_id": "linked-1",
        "latency_ms": 2.5,
        "trace_id": trace_id,
    }
    response = httpx.post(f"{server.url}/api/v1/records", json=[record], headers={"X-API-Key": key})
    assert response.status_code == 200, response.text

    listed = read(server, key, "/api/v1/traces", model=MODEL, start="-1h")["traces"]
    assert [(t["trace_id"], t["root_name"], t["num_spans"]) for t in listed] == [
        (trace_id, "GET /score", 2)
    ]
    tree = read(server, key, f"/api/v1/traces/{trace_id}")
    assert [r["request_id"] for r in tree["records"]] == ["linked-1"]
