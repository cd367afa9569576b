"""GET /api/v1/traces (slowest traces), /api/v1/traces/{trace_id} (span tree) and
/api/v1/spans/latency (span-duration percentile series per span name)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from observe.api.deps import get_session
from observe.api.errors import ApiError, documented
from observe.api.models import points_of
from observe.api.params import parse_duration, resolve_window
from observe.api.records import RecordOut
from observe.api.security import requires
from observe.auth import Scope
from observe.pipeline import traces

router = APIRouter(prefix="/api/v1", tags=["traces"], dependencies=[requires(Scope.READ)])

_WINDOW_DOC = "RFC 3339, epoch seconds, or a duration before now such as -1h"
_TRACE_ID = re.compile(r"^[0-9a-fA-F]{32}$")


class SpanOut(BaseModel):
    span_id: str
    parent_span_id: str | None
    depth: int = Field(description="0 for roots; a child is one deeper than its parent")
    children: list[str] = Field(description="span ids of the children, by start time")
    parent_missing: bool = Field(description="a root whose parent span is not stored")
    name: str
    service_name: str
    kind: str
    start_at: dt.datetime
    end_at: dt.datetime
    offset_ms: float = Field(description="start, in milliseconds after the trace's first span")
    duration_ms: float
    status_code: str = Field(description="unset, ok or error")
    status_message: str | None
    attributes: dict[str, Any] | None
    resource_attributes: dict[str, Any] | None
    model: str | None


class TraceOut(BaseModel):
    trace_id: str
    model: str | None = Field(description="named by a span, or by a record with this trace id")
    root_name: str | None
    service_name: str | None
    start_at: dt.datetime | None
    end_at: dt.datetime | None
    duration_ms: float | None = Field(description="from the first span's start to the last end")
    num_spans: int
    num_errors: int
    spans: list[SpanOut] = Field(description="depth-first: parents before children")
    records: list[RecordOut] = Field(description="inference records carrying this trace id")


class TraceSummaryOut(BaseModel):
    trace_id: str
    model: str | None
    service_name: str | None = Field(description="service of the root span")
    root_name: str | None = Field(
        description="name of the root span (of the earliest span while the root is missing)"
    )
    has_root: bool
    start_at: dt.datetime
    end_at: dt.datetime
    duration_ms: float
    num_spans: int
    num_errors: int
    has_error: bool


class TraceListOut(BaseModel):
    model: str | None
    service: str | None
    start: dt.datetime
    end: dt.datetime
    traces: list[TraceSummaryOut]


class SpanLatencyPoints(BaseModel):
    key: str = Field(description="the span name")
    points: list[dict[str, Any]] = Field(
        description="one per bucket with spans: t, num_spans, num_errors, error_rate, mean_ms "
        "and p<percentile> (milliseconds)"
    )


class SpanLatencyOut(BaseModel):
    model: str | None
    service: str | None
    start: dt.datetime
    end: dt.datetime
    bucket_seconds: int
    percentiles: list[float]
    series: list[SpanLatencyPoints] = Field(description="one per span name")


@router.get(
    "/traces/{trace_id}",
    response_model=TraceOut,
    responses=documented(401, 403, 404, 422),
    summary="One trace: its span tree and linked records",
)
def get_trace(trace_id: str, session: Session = Depends(get_session)) -> TraceOut:
    """The spans of a trace in tree order with depth, children, offsets, durations, status and
    attributes, and the inference records that carry the trace id."""
    if not _TRACE_ID.match(trace_id):
        raise ApiError(422, "trace_id: must be 32 hex digits")
    view = traces.load_trace(session, trace_id.lower())
    if view is None:
        raise ApiError(404, f"no spans or records with trace id {trace_id.lower()}")
    return TraceOut(
        **{name: getattr(view, name) for name in TraceOut.model_fields if name != "records"},
        records=[RecordOut(**record) for record in view.records],
    )


@router.get(
    "/traces",
    response_model=TraceListOut,
    responses=documented(401, 403, 422),
    summary="Traces of a model or service in a window, slowest first",
)
def list_traces(
    model: str | None = Query(None, description="model the traces belong to"),
    service: str | None = Query(None, description="service of the root span"),
    start: str | None = Query(None, description=f"default 1 h before end. {_WINDOW_DOC}"),
    end: str | None = Query(None, description=f"default now. {_WINDOW_DOC}"),
    has_error: bool | None = Query(None, description="only traces with (or without) an error"),
    limit: int = Query(20, ge=1, le=1000),
    session: Session = Depends(get_session),
) -> TraceListOut:
    """Traces that started in the window, longest first. A trace belongs to a model when one of
    its spans names it or an inference record carries its trace id."""
    if model is None and service is None:
        raise ApiError(422, "give model or service")
    start_at, end_at = resolve_window(start, end, default_seconds=3600)
    found = traces.list_slowest_traces(
        session,
        start=start_at,
        end=end_at,
        model=model,
        service_name=service,
        has_error=has_error,
        limit=limit,
    )
    return TraceListOut(
        model=model,
        service=service,
        start=start_at,
        end=end_at,
        traces=[_summary(row) for row in found],
    )


def _summary(row: dict[str, Any]) -> TraceSummaryOut:
    return TraceSummaryOut(
        **{k: v for k, v in row.items() if k != "root_span_id"},
        has_root=row["root_span_id"] is not None,
        has_error=row["num_errors"] > 0,
    )


@router.get(
    "/spans/latency",
    response_model=SpanLatencyOut,
    responses=documented(401, 403, 422),
    summary="Span-duration percentile series per span name",
)
def get_span_latency(
    model: str | None = Query(None, description="spans of this model"),
    service: str | None = Query(None, description="spans of this service (instead of model)"),
    name: list[str] | None = Query(None, description="only these span names (repeatable)"),
    start: str | None = Query(None, description=f"default 24 h before end. {_WINDOW_DOC}"),
    end: str | None = Query(None, description=f"default now. {_WINDOW_DOC}"),
    bucket: str = Query("1m", description="bucket length: 1m, 5m, 1h, 1d (multiple of 60 s)"),
    percentile: list[float] = Query([50, 95, 99], description="percentiles, 0-100 (repeatable)"),
    session: Session = Depends(get_session),
) -> SpanLatencyOut:
    """Duration percentiles (within 1% relative error), span count, errors and mean per time
    bucket, one series per span name, from per-minute rollups."""
    if (model is None) == (service is None):
        raise ApiError(422, "give either model or service")
    if any(not 0 <= p <= 100 for p in percentile):
        raise ApiError(422, "percentile: each must be between 0 and 100")
    start_at, end_at = resolve_window(start, end)
    try:
        result = traces.span_latency_series(
            session,
            start=start_at,
            end=end_at,
            model=model,
            service_name=service,
            names=name,
            bucket_seconds=parse_duration(bucket, "bucket"),
            percentiles=percentile,
        )
    except ValueError as error:
        raise ApiError(422, str(error)) from None
    return SpanLatencyOut(
        model=model,
        service=service,
        start=result.start,
        end=result.end,
        bucket_seconds=result.bucket_seconds,
        percentiles=list(percentile),
        series=[SpanLatencyPoints(**p.model_dump()) for p in points_of(result.frame)],
    )
