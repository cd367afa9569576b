"""Write the OTLP trace fixtures in tests/data/otlp from spans of the real OpenTelemetry SDK.

    .venv/bin/python -m tests.data.make_otlp_fixtures

The SDK records three traces of a model server (fixed ids and times, so the output is the same
on every run); its OTLP exporter's encoder (`encode_spans`) turns them into export requests:

- traces.pb: one binary protobuf ExportTraceServiceRequest with every span;
- traces.jsonl: the same spans in three requests, one per line, in the OpenTelemetry Collector
  file exporter's layout (OTLP/JSON: hex ids, integer enums, 64-bit integers as strings);
  trace 1's children come in the first request and its root in the second, as a batching
  exporter sends them (children end first);
- traces_with_errors.jsonl: a valid line, a line that is not JSON, and a request holding one
  valid span and one that ends before it starts.

trace.json next to them is the official example of the OTLP specification (see README.md).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from google.protobuf.json_format import MessageToDict
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import SpanKind, Status, StatusCode

OTLP = Path(__file__).parent / "otlp"
T0_NANO = 1_794_830_400 * 10**9  # 2026-11-16T12:00:00Z
MS = 10**6


class SequentialIds(IdGenerator):
    """Trace ids 1, 2, 3 ... and span ids 1, 2, 3 ... (in hex, zero-padded)."""

    def __init__(self) -> None:
        self._trace = 0
        self._span = 0

    def generate_trace_id(self) -> int:
        self._trace += 1
        return self._trace

    def generate_span_id(self) -> int:
        self._span += 1
        return self._span


def record_spans() -> list[ReadableSpan]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create(
            {"service.name": "fraud-scorer", "service.instance.id": "pod-1", "host.name": "gpu-1"}
        ),
        id_generator=SequentialIds(),
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("observe.fixtures", "1.0.0")
    _model_request(tracer, start=T0_NANO, lookup_ms=12, forward_ms=30, fail=False)
    _model_request(tracer, start=T0_NANO + 60_000 * MS, lookup_ms=250, forward_ms=31, fail=True)
    _gateway_request(tracer, start=T0_NANO + 120_000 * MS)
    provider.shutdown()
    return list(exporter.get_finished_spans())


def _model_request(tracer: Any, *, start: int, lookup_ms: int, forward_ms: int, fail: bool) -> None:
    root = tracer.start_span(
        "predict",
        kind=SpanKind.SERVER,
        start_time=start,
        attributes={"model.name": "fraud-scorer", "model.version": "v2", "batch_size": 8},
    )
    context = _context(root)
    lookup = tracer.start_span(
        "feature_store.lookup",
        context=context,
        kind=SpanKind.CLIENT,
        start_time=start + 1 * MS,
        attributes={"db.system": "redis", "cache.hit": not fail},
    )
    if fail:
        lookup.record_exception(TimeoutError("feature store timed out"), timestamp=start + 2 * MS)
        lookup.set_status(Status(StatusCode.ERROR, "feature store timed out"))
    lookup.end(end_time=start + (1 + lookup_ms) * MS)
    forward_start = start + (2 + lookup_ms) * MS
    forward = tracer.start_span(
        "forward",
        context=context,
        start_time=forward_start,
        attributes={"input.tokens": 512, "score": 0.25, "shapes": [8, 512]},
    )
    forward.end(end_time=forward_start + forward_ms * MS)
    if fail:
        root.set_status(Status(StatusCode.ERROR, "upstream dependency failed"))
    else:
        root.set_status(Status(StatusCode.OK))
    root.end(end_time=forward_start + (forward_ms + 1) * MS)


def _gateway_request(tracer: Any, *, start: int) -> None:
    root = tracer.start_span(
        "GET /score", kind=SpanKind.SERVER, start_time=start, attributes={"http.status": 200}
    )
    root.end(end_time=start + 5 * MS)


def _context(span: Any) -> Any:
    return trace.set_span_in_context(span)


def to_otlp_json(spans: Sequence[ReadableSpan]) -> dict[str, Any]:
    """An ExportTraceServiceRequest in OTLP/JSON: the proto3 JSON mapping with integer enums,
    and trace and span ids in hex rather than base64."""
    request = MessageToDict(encode_spans(spans), use_integers_for_enums=True)
    for resource_spans in request["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for span in scope_spans["spans"]:
                _hex_ids(span)
                for item in (*span.get("events", ()), *span.get("links", ())):
                    _hex_ids(item)
    return request


def _hex_ids(item: dict[str, Any]) -> None:
    for key in ("traceId", "spanId", "parentSpanId"):
        if key in item:
            item[key] = base64.b64decode(item[key]).hex()


def line(request: dict[str, Any]) -> bytes:
    return orjson.dumps(request) + b"\n"


def main() -> None:
    spans = record_spans()
    trace_1 = [s for s in spans if s.context.trace_id == 1]
    children_1 = [s for s in trace_1 if s.parent is not None]
    root_1 = [s for s in trace_1 if s.parent is None]
    others = [s for s in spans if s.context.trace_id != 1]
    (OTLP / "traces.pb").write_bytes(encode_spans(spans).SerializeToString())
    (OTLP / "traces.jsonl").write_bytes(
        line(to_otlp_json(children_1))
        + line(to_otlp_json(root_1 + others[:3]))
        + line(to_otlp_json(others[3:]))
    )
    bad = to_otlp_json(root_1 + children_1[:1])
    bad_span = bad["resourceSpans"][0]["scopeSpans"][0]["spans"][1]
    bad_span["endTimeUnixNano"] = str(int(bad_span["startTimeUnixNano"]) - MS)
    (OTLP / "traces_with_errors.jsonl").write_bytes(
        line(to_otlp_json(others[3:])) + b'{"resourceSpans": [\n' + line(bad)
    )


if __name__ == "__main__":
    main()
