"""Spans from decoded OTLP to the database: validation, model linking, trace summaries, rollups.

Validation turns the decoder's span dicts into `SpanIn`s one by one: an invalid span is
rejected with its reason while the others go on (OTLP's partial success).

A trace belongs to a model when one of its spans names the model, in its own attributes or its
resource's, under one of the keys of the `span_model_attributes` setting (by default
`model.name`, `model`, `gen_ai.request.model`; the first match wins), or when an inference
record carries its trace id. A span that names no model takes its trace's model: the one
already stored for the trace, else the one its root span (else another span of the batch)
names, else that of an inference record with its trace id. A model that becomes known later (a
span naming it, a record with the trace id) is given to the trace's stored spans that have
none. Models are never changed once set, so a trace whose spans name several models keeps
each span's own.

Ingest keeps, in the same transaction as the spans: one summary row per trace
(observe.storage.traces: start, end, duration, span and error counts, root span), and per-minute
duration rollups per service and per model (observe.pipeline.span_rollups).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow.compute as pc
from pydantic import ValidationError
from sqlalchemy.orm import Session

from collectors.otlp import DecodedTraces
from observe.pipeline.span_rollups import MODEL, SERVICE, RollupEntry, update_span_rollups
from observe.schemas.common import describe_error, simplify_errors
from observe.schemas.record_table import RecordTable
from observe.schemas.spans import SpanIn
from observe.storage import records as record_store
from observe.storage import spans as span_store
from observe.storage import traces as trace_store
from observe.storage.spans import LinkedSpan
from observe.storage.traces import TraceRow

MAX_REPORTED_REJECTIONS = 5
#: How validation errors name span fields: as the OTLP JSON encoding spells them.
_OTLP_FIELD_NAMES = {
    "trace_id": "traceId",
    "span_id": "spanId",
    "parent_span_id": "parentSpanId",
    "start_time_unix_nano": "startTimeUnixNano",
    "end_time_unix_nano": "endTimeUnixNano",
    "status_code": "status.code",
    "status_message": "status.message",
    "service_name": "resource attribute service.name",
    "resource_attributes": "resource.attributes",
    "model": "model attribute",
}


# --- validation --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpanRejection:
    """A span that was not accepted, and why."""

    trace_id: str | None
    span_id: str | None
    message: str
    data: Any = None

    def describe(self) -> str:
        if self.span_id or self.trace_id:
            return f"span {self.span_id or '?'} of trace {self.trace_id or '?'}: {self.message}"
        return self.message


@dataclass
class ValidatedSpans:
    """The valid spans of a request or file, and the rejected ones."""

    spans: list[SpanIn] = field(default_factory=list)
    rejections: list[SpanRejection] = field(default_factory=list)

    def error_message(self) -> str:
        """A summary of the rejections for OTLP's partial success `error_message`."""
        if not self.rejections:
            return ""
        shown = "; ".join(r.describe() for r in self.rejections[:MAX_REPORTED_REJECTIONS])
        more = len(self.rejections) - MAX_REPORTED_REJECTIONS
        suffix = f"; and {more} more" if more > 0 else ""
        return f"{len(self.rejections)} span(s) rejected: {shown}{suffix}"


def validate_spans(decoded: DecodedTraces, *, model_attributes: Sequence[str]) -> ValidatedSpans:
    """Validate decoded spans one by one, noting the model each names."""
    result = ValidatedSpans()
    for undecodable in decoded.undecodable:
        result.rejections.append(
            SpanRejection(undecodable.trace_id, undecodable.span_id, undecodable.message)
        )
    for data in decoded.spans:
        model = span_model(
            data.get("attributes"), data.get("resource_attributes"), model_attributes
        )
        try:
            result.spans.append(SpanIn.model_validate({**data, "model": model}))
        except ValidationError as error:
            result.rejections.append(_rejection(data, error))
    return result


def span_model(attributes: Any, resource_attributes: Any, keys: Sequence[str]) -> str | None:
    """The model a span names: the first of `keys` holding a non-empty string in its own
    attributes, else in its resource's."""
    for source in (attributes, resource_attributes):
        if not isinstance(source, dict):
            continue
        for key in keys:
            value = source.get(key)
            if isinstance(value, str) and value:
                return value
    return None


def _rejection(data: dict[str, Any], error: ValidationError) -> SpanRejection:
    reasons = []
    for detail in simplify_errors(error.errors()):
        name, message = describe_error(detail)
        if name:
            head, _, rest = name.partition(".")
            name = _OTLP_FIELD_NAMES.get(head, head) + (f".{rest}" if rest else "")
        reasons.append(f"{name}: {message}" if name else message)
    trace_id, span_id = data.get("trace_id"), data.get("span_id")
    return SpanRejection(
        trace_id if isinstance(trace_id, str) else None,
        span_id if isinstance(span_id, str) else None,
        "; ".join(reasons),
        data,
    )


# --- ingest ------------------------------------------------------------------------------------


def ingest_spans(session: Session, spans: Sequence[SpanIn], *, now: dt.datetime) -> int:
    """Store new spans with their models, update their traces' summaries and the rollups.

    Returns:
        Number of spans stored now (the others were stored before).
    """
    trace_ids = sorted({span.trace_id for span in spans})
    stored = trace_store.lock_traces(session, trace_ids)
    trace_models = _trace_models(session, spans, stored)
    models = [span.model or trace_models.get(span.trace_id) for span in spans]
    positions = span_store.insert_spans(session, spans, models, received_at=now)
    new_spans = [spans[i] for i in positions]
    new_models = [models[i] for i in positions]
    unlinked = _merge_into_traces(session, new_spans, new_models, stored, trace_models)
    linked = span_store.link_spans_to_models(session, unlinked)
    update_span_rollups(session, _rollup_entries(new_spans, new_models, linked))
    return len(positions)


def _trace_models(
    session: Session, spans: Sequence[SpanIn], stored: Mapping[str, TraceRow]
) -> dict[str, str]:
    """The model of each trace of the batch, where one is known."""
    models = {trace_id: row.model for trace_id, row in stored.items() if row.model}
    named: dict[str, str] = {}
    for span in spans:
        known = span.trace_id in models
        if span.model and not known and (span.parent_span_id is None or span.trace_id not in named):
            named[span.trace_id] = span.model  # the root's model wins
    models.update(named)
    missing = [span.trace_id for span in spans if span.trace_id not in models]
    if missing:
        models.update(record_store.find_models_of_traces(session, missing))
    return models


@dataclass
class _TraceDelta:
    """What a batch's new spans add to one trace."""

    start_at: dt.datetime
    end_at: dt.datetime
    num_spans: int = 0
    num_errors: int = 0
    model: str | None = None
    root: SpanIn | None = None
    earliest: SpanIn | None = None
    has_unlinked_span: bool = False


def _merge_into_traces(
    session: Session,
    spans: Sequence[SpanIn],
    models: Sequence[str | None],
    stored: dict[str, TraceRow],
    trace_models: Mapping[str, str],
) -> dict[str, str]:
    """Merge new spans into their traces' summaries.

    Returns:
        {trace_id: model} for traces whose stored spans may lack the model now known.
    """
    deltas = _trace_deltas(spans, models, trace_models)
    new_rows = [_new_trace(trace_id, deltas[trace_id]) for trace_id in sorted(deltas)]
    new_rows = [row for row in new_rows if row.trace_id not in stored]
    inserted = trace_store.insert_traces(session, new_rows)
    raced = [row.trace_id for row in new_rows if row.trace_id not in inserted]
    if raced:  # another writer created these traces since we looked: merge into theirs
        stored.update(trace_store.lock_traces(session, raced))
    touched = {trace_id: row for trace_id, row in stored.items() if trace_id in deltas}
    unlinked = {}
    for trace_id, row in touched.items():
        model_before = row.model
        _merge_trace(row, deltas[trace_id])
        # Spans stored before without a model, or ours, may lack the model the trace has now.
        if row.model and (model_before is None or deltas[trace_id].has_unlinked_span):
            unlinked[trace_id] = row.model
    trace_store.save_traces(session, touched.values())
    return unlinked


def _trace_deltas(
    spans: Sequence[SpanIn], models: Sequence[str | None], trace_models: Mapping[str, str]
) -> dict[str, _TraceDelta]:
    deltas: dict[str, _TraceDelta] = {}
    for span, model in zip(spans, models, strict=True):
        start_at, end_at = span.start_at, span.end_at
        delta = deltas.get(span.trace_id)
        if delta is None:
            delta = deltas[span.trace_id] = _TraceDelta(start_at, end_at)
            delta.model = trace_models.get(span.trace_id)
        delta.start_at = min(delta.start_at, start_at)
        delta.end_at = max(delta.end_at, end_at)
        delta.num_spans += 1
        delta.num_errors += span.is_error
        delta.model = delta.model or model
        delta.has_unlinked_span |= model is None
        if span.parent_span_id is None and delta.root is None:
            delta.root = span
        if delta.earliest is None or start_at < delta.earliest.start_at:
            delta.earliest = span
    return deltas


def _new_trace(trace_id: str, delta: _TraceDelta) -> TraceRow:
    head = delta.root or delta.earliest
    assert head is not None
    return TraceRow(
        id=None,
        trace_id=trace_id,
        model=delta.model,
        service_name=head.service_name,
        root_name=head.name,
        root_span_id=delta.root.span_id if delta.root else None,
        start_at=delta.start_at,
        end_at=delta.end_at,
        duration_ms=_milliseconds(delta.end_at - delta.start_at),
        num_spans=delta.num_spans,
        num_errors=delta.num_errors,
    )


def _merge_trace(row: TraceRow, delta: _TraceDelta) -> None:
    """Add a delta to a stored summary (one a record created has no spans yet)."""
    was_empty = row.num_spans == 0
    earlier = was_empty or delta.start_at < row.start_at
    row.start_at = delta.start_at if was_empty else min(row.start_at, delta.start_at)
    row.end_at = delta.end_at if was_empty else max(row.end_at, delta.end_at)
    row.duration_ms = _milliseconds(row.end_at - row.start_at)
    row.num_spans += delta.num_spans
    row.num_errors += delta.num_errors
    row.model = row.model or delta.model
    if row.root_span_id is None and delta.root is not None:
        _set_head(row, delta.root)
        row.root_span_id = delta.root.span_id
    elif row.root_span_id is None and earlier and delta.earliest is not None:
        _set_head(row, delta.earliest)


def _set_head(row: TraceRow, span: SpanIn) -> None:
    row.root_name = span.name
    row.service_name = span.service_name


def _milliseconds(delta: dt.timedelta) -> float:
    return delta / dt.timedelta(milliseconds=1)


def _rollup_entries(
    spans: Sequence[SpanIn], models: Sequence[str | None], linked: Sequence[LinkedSpan]
) -> list[RollupEntry]:
    entries = []
    for span, model in zip(spans, models, strict=True):
        values = (
            span.name,
            span.kind,
            span.start_at,
            span.duration_ms,
            span.is_error,
            span.parent_span_id is None,
        )
        entries.append(RollupEntry(SERVICE, span.service_name, *values))
        if model is not None:
            entries.append(RollupEntry(MODEL, model, *values))
    return entries + _model_entries(linked)


def _model_entries(linked: Sequence[LinkedSpan]) -> list[RollupEntry]:
    return [
        RollupEntry(
            MODEL, s.model, s.name, s.kind, s.start_at, s.duration_ms, s.is_error, s.is_root
        )
        for s in linked
    ]


# --- records -> traces -------------------------------------------------------------------------


@dataclass(frozen=True)
class TraceLink:
    """A stored record's trace id, model and time."""

    trace_id: str
    model: str
    timestamp: dt.datetime


def trace_links(table: RecordTable) -> list[TraceLink]:
    """The trace links of the records of `table` that carry a trace id."""
    traced = table.columns.filter(pc.is_valid(table.column("trace_id")))
    return [
        TraceLink(row["trace_id"], row["model"], row["timestamp"])
        for row in traced.select(["trace_id", "model", "timestamp"]).to_pylist()
    ]


def link_records_to_traces(session: Session, records: Sequence[TraceLink]) -> int:
    """Link the traces that newly stored records carry to the records' models.

    A trace not seen yet gets a summary row holding only its model, so that spans arriving
    later (or concurrently) take it. Stored spans without a model get it, and are added to
    their model's rollups.

    Returns:
        Number of spans linked now.
    """
    trace_models: dict[str, str] = {}
    for record in records:
        if record.trace_id is not None:
            known = trace_models.get(record.trace_id)
            trace_models[record.trace_id] = min(known, record.model) if known else record.model
    if not trace_models:
        return 0
    by_time = {r.trace_id: r.timestamp for r in records if r.trace_id is not None}
    placeholders = [
        _placeholder(trace_id, model, by_time[trace_id])
        for trace_id, model in sorted(trace_models.items())
    ]
    inserted = trace_store.insert_traces(session, placeholders)
    stored = trace_store.lock_traces(session, set(trace_models) - inserted)
    unlinked = {tid: trace_models[tid] for tid, row in stored.items() if row.model is None}
    for trace_id in unlinked:
        stored[trace_id].model = unlinked[trace_id]
    trace_store.save_traces(session, (stored[trace_id] for trace_id in unlinked))
    linked = span_store.link_spans_to_models(session, unlinked)
    update_span_rollups(session, _model_entries(linked))
    return len(linked)


def _placeholder(trace_id: str, model: str, timestamp: dt.datetime) -> TraceRow:
    return TraceRow(
        id=None,
        trace_id=trace_id,
        model=model,
        service_name=None,
        root_name=None,
        root_span_id=None,
        start_at=timestamp,
        end_at=timestamp,
        duration_ms=0.0,
        num_spans=0,
        num_errors=0,
    )
