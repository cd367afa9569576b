"""Span ingest throughput through /v1/traces with the real OpenTelemetry exporter, next to a plain
COPY of the same spans into a bare table (the machine's limit), in one run on Postgres.

What it measures:

1. spans/s through POST /v1/traces of a real `observe serve` on Postgres, sent by the
   OpenTelemetry Python SDK's BatchSpanProcessor and OTLPSpanExporter (protobuf over HTTP, 512
   spans per export, its defaults), from several client processes at once, as several
   instrumented services would send; each span is acknowledged only once committed, with its
   trace summary, model link and duration rollups;
2. a plain psycopg COPY of the same spans (the same columns, attributes as JSON text) into a
   table with no index: what this machine can write at all.

Spans are recorded with the SDK before the clock starts (their creation is the application's
cost, not the pipeline's) and handed to the BatchSpanProcessor as finished spans are. Each trace
is a model request of five spans: predict (naming the model), feature_store.lookup,
preprocess, forward and postprocess, with a few attributes each.

Usage:
    .venv/bin/python benchmarks/traces.py                      # 100,000 spans, 2 clients
    .venv/bin/python benchmarks/traces.py --traces 4000 --clients 1

Postgres comes from --admin-url (default postgresql://postgres@127.0.0.1:5432/postgres); the
script creates and drops its own databases named observe_bench_*.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import psycopg
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import SpanKind

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import Postgres, bare_copy_rate, observe_server  # noqa: E402
from observe.auth import Scope  # noqa: E402

MS = 10**6
SPANS_PER_TRACE = 5
EXPORT_BATCH = 512
CHILDREN = (("feature_store.lookup", 4), ("preprocess", 2), ("forward", 18), ("postprocess", 1))
COPY_COLUMNS = (
    "trace_id, span_id, parent_span_id, service_name, name, kind, start_at, end_at, "
    "duration_ms, status_code, status_message, attributes, resource_attributes, model, "
    "received_at"
)
KINDS = {SpanKind.INTERNAL: "internal", SpanKind.SERVER: "server", SpanKind.CLIENT: "client"}


# --- spans ------------------------------------------------------------------------------------


class SequentialIds(IdGenerator):
    """Distinct ids per client: the client's number in the high bits, a counter below."""

    def __init__(self, client: int) -> None:
        self._base = (client + 1) << 40
        self._trace = 0
        self._span = 0

    def generate_trace_id(self) -> int:
        self._trace += 1
        return self._base + self._trace

    def generate_span_id(self) -> int:
        self._span += 1
        return self._base + self._span


def record_spans(client: int, num_traces: int) -> list[ReadableSpan]:
    """`num_traces` model requests of client `client`, recorded by the SDK."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create(
            {"service.name": "fraud-scorer", "service.instance.id": f"pod-{client}"}
        ),
        id_generator=SequentialIds(client),
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("observe.benchmark", "1.0")
    start = time.time_ns() - 3_600 * 10**9
    for number in range(num_traces):
        _model_request(tracer, start + number * 20 * MS, number)
    provider.shutdown()
    return list(memory.get_finished_spans())


def _model_request(tracer: Any, begin: int, number: int) -> None:
    root = tracer.start_span(
        "predict",
        kind=SpanKind.SERVER,
        start_time=begin,
        attributes={"model.name": "fraud-scorer", "model.version": "v7", "request.id": number},
    )
    context = trace.set_span_in_context(root)
    at = begin + MS
    for name, ms in CHILDREN:
        duration = (ms + number % 7) * MS
        child = tracer.start_span(
            name,
            context=context,
            kind=SpanKind.CLIENT if name.startswith("feature") else SpanKind.INTERNAL,
            start_time=at,
            attributes={"component": name.split(".")[0], "batch.size": 8, "cache.hit": True},
        )
        child.end(end_time=at + duration)
        at += duration
    root.end(end_time=at + MS)


# --- the exporting clients --------------------------------------------------------------------


class CountingExporter(SpanExporter):
    """The OTLP exporter, counting what it exported and what failed."""

    def __init__(self, inner: OTLPSpanExporter) -> None:
        self.inner = inner
        self.num_ok = 0
        self.num_failed = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self.inner.export(spans)
        if result is SpanExportResult.SUCCESS:
            self.num_ok += len(spans)
        else:
            self.num_failed += len(spans)
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()


def run_client(
    client: int, num_traces: int, url: str, key: str, ready: Any, go: Any, results: Any
) -> None:
    spans = record_spans(client, num_traces)
    exporter = CountingExporter(
        OTLPSpanExporter(endpoint=f"{url}/v1/traces", headers={"Authorization": f"Bearer {key}"})
    )
    processor = BatchSpanProcessor(
        exporter, max_queue_size=len(spans) + 1, max_export_batch_size=EXPORT_BATCH
    )
    ready.put(client)
    go.wait()
    for span in spans:
        processor.on_end(span)
    processor.force_flush(600_000)
    results.put((client, exporter.num_ok, exporter.num_failed, time.perf_counter()))
    processor.shutdown()


def measure_exporter(url: str, key: str, num_clients: int, traces_per_client: int) -> float:
    """Spans/s from the start signal until every client has flushed (all acknowledged)."""
    context = multiprocessing.get_context("fork")
    ready, results, go = context.Queue(), context.Queue(), context.Event()
    processes = [
        context.Process(
            target=run_client, args=(n, traces_per_client, url, key, ready, go, results)
        )
        for n in range(num_clients)
    ]
    for process in processes:
        process.start()
    for _ in processes:
        ready.get(timeout=600)
    started = time.perf_counter()
    go.set()
    outcomes = [results.get(timeout=900) for _ in processes]
    for process in processes:
        process.join(60)
    failed = sum(outcome[2] for outcome in outcomes)
    if failed:
        raise RuntimeError(f"{failed} spans failed to export")
    finished = max(outcome[3] for outcome in outcomes)
    return sum(outcome[1] for outcome in outcomes) / (finished - started)


# --- the peer: COPY ---------------------------------------------------------------------------


def copy_row(span: ReadableSpan, received_at: str) -> tuple[Any, ...]:
    start = dt.datetime.fromtimestamp(span.start_time / 1e9, dt.UTC)
    end = dt.datetime.fromtimestamp(span.end_time / 1e9, dt.UTC)
    parent = f"{span.parent.span_id:016x}" if span.parent else None
    attributes = dict(span.attributes or {})
    return (
        f"{span.context.trace_id:032x}",
        f"{span.context.span_id:016x}",
        parent,
        "fraud-scorer",
        span.name,
        KINDS.get(span.kind, "unspecified"),
        start.isoformat(),
        end.isoformat(),
        (span.end_time - span.start_time) / 1e6,
        "unset",
        None,
        orjson.dumps(attributes).decode(),
        orjson.dumps(dict(span.resource.attributes)).decode(),
        "fraud-scorer",
        received_at,
    )


def measure_copy(url: str, spans: list[ReadableSpan]) -> float:
    """Rows/s of a psycopg COPY of the spans into a bare copy of the spans table."""
    received_at = dt.datetime.now(dt.UTC).isoformat()
    rows = (copy_row(span, received_at) for span in spans)
    return bare_copy_rate(url, "spans", COPY_COLUMNS, rows)


# --- what was stored ------------------------------------------------------------------------------


def stored_counts(url: str) -> tuple[int, int, int]:
    """Spans, traces and spans counted in the model's rollups."""
    queries = (
        "SELECT count(*) FROM spans",
        "SELECT count(*) FROM traces",
        "SELECT coalesce(sum(num_spans), 0) FROM span_rollups WHERE dim_key = 'model'",
    )
    with psycopg.connect(url) as connection:
        spans, traces, rolled = (int(connection.execute(q).fetchone()[0]) for q in queries)  # type: ignore[index]
    return spans, traces, rolled


# --- report -----------------------------------------------------------------------------------


def print_table(rows: list[tuple[str, str]]) -> None:
    width = max(len(what) for what, _ in rows)
    print(f"{'measurement'.ljust(width)} | spans/s")
    print("-" * width + "-+-" + "-" * 12)
    for what, value in rows:
        print(f"{what.ljust(width)} | {value}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--traces", type=int, default=20_000, help="traces (5 spans each)")
    parser.add_argument("--clients", type=int, default=2, help="exporting client processes")
    args = parser.parse_args()

    pg = Postgres(args.admin_url)
    work = Path(tempfile.mkdtemp(prefix="observe-bench-"))
    per_client = args.traces // args.clients
    num_spans = per_client * args.clients * SPANS_PER_TRACE
    print(f"machine: {os.cpu_count()} CPUs; {num_spans:,} spans from {args.clients} clients")
    try:
        url = pg.fresh_upgraded("observe_bench_traces")
        with observe_server(url, work, [Scope.INGEST, Scope.READ]) as (base_url, key):
            rate = measure_exporter(base_url, key, args.clients, per_client)
        stored = stored_counts(url)
        print(f"  /v1/traces {rate:,.0f} spans/s; stored spans, traces, rolled up: {stored}")
        if stored != (num_spans, num_spans // SPANS_PER_TRACE, num_spans):
            raise RuntimeError(f"expected {num_spans} spans stored and rolled up, got {stored}")
        spans = [s for n in range(args.clients) for s in record_spans(n, per_client)]
        copy_rate = measure_copy(pg.fresh_upgraded("observe_bench_traces_copy"), spans)
        print(f"  raw COPY {copy_rate:,.0f} rows/s", flush=True)
    finally:
        pg.drop_all()
        shutil.rmtree(work, ignore_errors=True)
    print()
    print_table(
        [
            (
                f"/v1/traces, OTel BatchSpanProcessor + OTLPSpanExporter x{args.clients} "
                "(Postgres)",
                f"{rate:,.0f} ({rate / copy_rate:.0%} of COPY)",
            ),
            ("psycopg COPY of the same spans into a bare table", f"{copy_rate:,.0f}"),
        ]
    )


if __name__ == "__main__":
    main()
