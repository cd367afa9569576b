"""Traces: the slowest traces of a model in a window, one trace's span tree, and span-duration
percentiles per span name over time (from the span rollups), through `observe.pipeline.traces`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from dashboards.data import InputError, Window, auto_bucket_seconds
from observe.pipeline import traces as trace_pipeline
from observe.pipeline.traces import SpanLatencySeries, TraceView

NUM_TRACES = 50
SPAN_PERCENTILES = (50.0, 95.0)
MAX_SPAN_SERIES = 12
_TRACE_ID = re.compile(r"^[0-9a-fA-F]{32}$")
#: What the waterfall and the span details show of each span.
SPAN_FIELDS = (
    "span_id",
    "parent_span_id",
    "name",
    "service_name",
    "kind",
    "depth",
    "offset_ms",
    "duration_ms",
    "status_code",
    "status_message",
    "attributes",
    "resource_attributes",
)


@dataclass(frozen=True)
class TracesView:
    """`traces`: the slowest traces, as `list_slowest_traces` returns them; `selected`: the
    trace asked for, else the slowest (`is_default` says which)."""

    model: str
    window: Window
    traces: list[dict[str, Any]]
    selected: TraceView | None
    is_default: bool
    span_series: SpanLatencySeries


def parse_trace_id(value: str | None) -> str | None:
    if not value:
        return None
    if not _TRACE_ID.match(value):
        raise InputError("trace: must be 32 hex digits")
    return value.lower()


def load_traces(
    sessions: sessionmaker[Session],
    *,
    model: str,
    window: Window,
    trace_id: str | None = None,
    limit: int = NUM_TRACES,
) -> TracesView:
    """The window's slowest traces of `model`, the chosen (or slowest) trace's spans, and the
    span-duration percentiles of the model's spans."""
    with sessions() as session:
        traces = trace_pipeline.list_slowest_traces(
            session, start=window.start, end=window.end, model=model, limit=limit
        )
        wanted = trace_id or (traces[0]["trace_id"] if traces else None)
        selected = trace_pipeline.load_trace(session, wanted) if wanted else None
        if trace_id and selected is None:
            raise InputError(f"no spans or records with trace id {trace_id}")
        series = trace_pipeline.span_latency_series(
            session,
            start=window.start,
            end=window.end,
            model=model,
            bucket_seconds=auto_bucket_seconds(window),
            percentiles=SPAN_PERCENTILES,
        )
    return TracesView(model, window, traces, selected, trace_id is None, series)


def span_records(trace: TraceView) -> list[dict[str, Any]]:
    """The trace's spans in tree order with SPAN_FIELDS, JSON-ready (for the page's store)."""
    return [{name: span.get(name) for name in SPAN_FIELDS} for span in trace.spans]


def busiest_span_names(series: SpanLatencySeries, limit: int = MAX_SPAN_SERIES) -> list[str]:
    """The span names with the most spans, at most `limit`, by name."""
    frame = series.frame
    if frame.empty:
        return []
    counts = frame.groupby("series")["num_spans"].sum().sort_values(ascending=False)
    return sorted(str(name) for name in counts.index[:limit])


def span_series_frame(series: SpanLatencySeries, names: list[str]) -> pd.DataFrame:
    return series.frame[series.frame["series"].isin(names)]
