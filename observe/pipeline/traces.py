"""Trace reads: a trace's span tree, the slowest traces, and span-duration statistics.

Span-duration statistics come from the per-minute rollups (observe.pipeline.span_rollups), so
their cost grows with the number of minutes and span names, not the number of spans; windows
are widened to whole minutes (and to whole output buckets for series), as for model latency.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session

from observe.pipeline.latency import (
    MAX_POINTS,
    align_window,
    percentile_column,
    summarize_rollups,
)
from observe.pipeline.rollups import BUCKET_SECONDS
from observe.pipeline.span_rollups import MODEL, SERVICE
from observe.storage import records as record_store
from observe.storage import span_rollups as rollup_store
from observe.storage import spans as span_store
from observe.storage import traces as trace_store

DEFAULT_PERCENTILES = (50.0, 95.0, 99.0)
#: Columns of `span_duration_summary`.
SUMMARY_COLUMNS = (
    "name",
    "kind",
    "num_spans",
    "num_errors",
    "num_roots",
    "mean_ms",
    "p50_ms",
    "p95_ms",
)
#: Columns of `span_duration_periods`.
PERIOD_COLUMNS = (
    "name",
    "period",
    "count",
    "num_errors",
    "mean_ms",
    "p50_ms",
    "p95_ms",
    "is_root",
    "is_dependency",
    "num_traces",
)
#: Span kinds that call out of the service: a dependency (feature store, database, ...).
DEPENDENCY_KINDS = ("client", "producer")


# --- one trace ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TraceView:
    """A trace with its spans in tree order (see `build_span_tree`) and the inference records
    that carry its trace id."""

    trace_id: str
    model: str | None
    root_name: str | None
    service_name: str | None
    start_at: dt.datetime | None
    end_at: dt.datetime | None
    duration_ms: float | None
    num_spans: int
    num_errors: int
    spans: list[dict[str, Any]]
    records: list[dict[str, Any]]


def load_trace(session: Session, trace_id: str) -> TraceView | None:
    """A trace's spans and records; None when neither is stored."""
    spans = span_store.load_trace_spans(session, trace_id)
    records = record_store.load_records_of_trace(session, trace_id)
    if not spans and not records:
        return None
    summary = trace_store.get_trace(session, trace_id)
    tree = build_span_tree(spans)
    start_at = min((s["start_at"] for s in spans), default=None)
    end_at = max((s["end_at"] for s in spans), default=None)
    for span in tree:
        span["offset_ms"] = _milliseconds(span["start_at"] - start_at)
    roots = [s for s in tree if s["depth"] == 0]
    return TraceView(
        trace_id=trace_id,
        model=summary.model if summary else None,
        root_name=roots[0]["name"] if roots else None,
        service_name=roots[0]["service_name"] if roots else None,
        start_at=start_at,
        end_at=end_at,
        duration_ms=_milliseconds(end_at - start_at) if start_at and end_at else None,
        num_spans=len(spans),
        num_errors=sum(s["status_code"] == "error" for s in spans),
        spans=tree,
        records=records,
    )


def _milliseconds(delta: dt.timedelta) -> float:
    return delta / dt.timedelta(milliseconds=1)


def build_span_tree(spans: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Spans in depth-first order (parents before children, siblings by start), each with
    `depth`, `children` (span ids, by start) and `parent_missing`.

    `spans` must be in start order. A span whose parent is not among them (not sent, or not
    arrived yet) is a root with `parent_missing` true; so is one on a parent cycle, which
    malformed input can hold.
    """
    by_id = {span["span_id"]: span for span in spans}
    children: dict[str, list[dict[str, Any]]] = defaultdict(list)
    roots = []
    for span in spans:
        parent = span["parent_span_id"]
        if parent is not None and parent in by_id and parent != span["span_id"]:
            children[parent].append(span)
        else:
            roots.append(span)
    ordered: list[dict[str, Any]] = []
    visited: set[str] = set()
    for root in [*roots, *spans]:  # spans left unvisited after the roots lie on cycles
        if root["span_id"] not in visited:
            _walk(root, children, visited, ordered)
    return ordered


def _walk(
    root: dict[str, Any],
    children: dict[str, list[dict[str, Any]]],
    visited: set[str],
    ordered: list[dict[str, Any]],
) -> None:
    stack = [(root, 0)]
    while stack:
        span, depth = stack.pop()
        if span["span_id"] in visited:
            continue
        visited.add(span["span_id"])
        below = children.get(span["span_id"], [])
        ordered.append(
            {
                **span,
                "depth": depth,
                "children": [child["span_id"] for child in below],
                "parent_missing": depth == 0 and span["parent_span_id"] is not None,
            }
        )
        stack.extend((child, depth + 1) for child in reversed(below))


# --- many traces -------------------------------------------------------------------------------


def list_slowest_traces(
    session: Session,
    *,
    start: dt.datetime,
    end: dt.datetime,
    model: str | None = None,
    service_name: str | None = None,
    has_error: bool | None = None,
    limit: int = 20,
) -> list[dict[str, Any]]:
    """Traces of a model (named by a span or by an inference record) and/or a root service
    that started in [start, end), longest first, with root span name, duration, span and error
    counts. See observe.storage.traces.load_slowest_traces."""
    if model is None and service_name is None:
        raise ValueError("give a model or a service")
    return trace_store.load_slowest_traces(
        session,
        start=start,
        end=end,
        model=model,
        service_name=service_name,
        has_error=has_error,
        limit=limit,
    )


# --- span durations ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SpanLatencySeries:
    """Duration percentiles per (span name, bucket). `frame` columns: series (the span name),
    bucket_start, num_spans, num_errors, error_rate, mean_ms and one `p<percentile>` column
    per percentile."""

    start: dt.datetime
    end: dt.datetime
    bucket_seconds: int
    frame: pd.DataFrame


def span_latency_series(
    session: Session,
    *,
    start: dt.datetime,
    end: dt.datetime,
    model: str | None = None,
    service_name: str | None = None,
    names: Sequence[str] | None = None,
    bucket_seconds: int = BUCKET_SECONDS,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
) -> SpanLatencySeries:
    """Span-duration percentiles per time bucket, one series per span name, of a model's spans
    (or, with `service_name` instead, a service's), from rollups.

    Raises:
        ValueError: neither model nor service, a bucket that is not a multiple of 60 s, or
            too many buckets.
    """
    dim_key, dim_value = _dimension(model, service_name)
    if bucket_seconds < BUCKET_SECONDS or bucket_seconds % BUCKET_SECONDS:
        raise ValueError(f"bucket must be a positive multiple of {BUCKET_SECONDS} seconds")
    start, end = align_window(start, end, bucket_seconds)
    num_buckets = int((end - start).total_seconds()) // bucket_seconds
    if num_buckets > MAX_POINTS:
        raise ValueError(
            f"{num_buckets} buckets requested; use a longer bucket (at most {MAX_POINTS})"
        )
    frame = _rollups(session, dim_key, dim_value, start, end, names)
    qs = [p / 100.0 for p in percentiles]
    result = summarize_rollups(frame, frame["name"], start, bucket_seconds, num_buckets, qs)
    result = result.rename(
        columns={
            "num_requests": "num_spans",
            **{f"q{i}": percentile_column(p) for i, p in enumerate(percentiles)},
        }
    )
    return SpanLatencySeries(start, end, bucket_seconds, result)


def span_duration_summary(
    session: Session,
    *,
    start: dt.datetime,
    end: dt.datetime,
    model: str | None = None,
    service_name: str | None = None,
) -> pd.DataFrame:
    """Per span name over [start, end) (widened to whole minutes): count, errors, mean, p50
    and p95 of the duration, for a model's spans (or a service's), from rollups.

    Returns:
        DataFrame with `SUMMARY_COLUMNS`, one row per span name seen, sorted by name;
        durations in milliseconds (p50/p95 within 1% relative error); `kind` is the span kind
        (client, server, internal, ...) and `num_roots` counts spans that were their trace's
        root.
    """
    dim_key, dim_value = _dimension(model, service_name)
    start, end = align_window(start, end, BUCKET_SECONDS)
    window_seconds = int((end - start).total_seconds())
    frame = _rollups(session, dim_key, dim_value, start, end, None)
    stats = summarize_rollups(frame, frame["name"], start, window_seconds, 1, [0.5, 0.95])
    stats = stats.rename(
        columns={"series": "name", "num_requests": "num_spans", "q0": "p50_ms", "q1": "p95_ms"}
    )
    per_name = frame.groupby("name").agg(kind=("kind", "first"), num_roots=("num_roots", "sum"))
    stats = stats.merge(per_name, left_on="name", right_index=True, how="left")
    stats["num_roots"] = stats["num_roots"].fillna(0).astype("int64")
    return stats[list(SUMMARY_COLUMNS)].sort_values("name", ignore_index=True)


def span_duration_periods(
    session: Session,
    *,
    model: str | None = None,
    service_name: str | None = None,
    baseline_start: dt.datetime,
    baseline_end: dt.datetime,
    start: dt.datetime,
    end: dt.datetime,
) -> pd.DataFrame:
    """A model's (or a service's) span durations per span name in a baseline and a window, in
    long form: the spans input of the root-cause diagnosis
    (analyzers.rootcause.DiagnosisInputs.spans).

    Returns:
        DataFrame with `PERIOD_COLUMNS`: `period` is "baseline" or "window"; `count`,
        `num_errors`, `mean_ms`, `p50_ms` and `p95_ms` as in `span_duration_summary`;
        `is_root` where most of the name's spans were their trace's root; `is_dependency`
        for client and producer spans (calls to other services); `num_traces` the model's
        traces that started in the period.
    """
    frames = []
    for period, (period_start, period_end) in (
        ("baseline", (baseline_start, baseline_end)),
        ("window", (start, end)),
    ):
        stats = span_duration_summary(
            session, model=model, service_name=service_name, start=period_start, end=period_end
        )
        stats.insert(1, "period", period)
        aligned_start, aligned_end = align_window(period_start, period_end, BUCKET_SECONDS)
        stats["num_traces"] = (
            trace_store.count_traces(session, model=model, start=aligned_start, end=aligned_end)
            if model is not None
            else int(stats["num_roots"].sum())
        )
        frames.append(stats)
    frames = [frame for frame in frames if not frame.empty]
    if not frames:
        return pd.DataFrame(columns=list(PERIOD_COLUMNS))
    result = pd.concat(frames, ignore_index=True).rename(columns={"num_spans": "count"})
    result["is_root"] = result["num_roots"] * 2 > result["count"]
    result["is_dependency"] = result["kind"].isin(DEPENDENCY_KINDS)
    return result[list(PERIOD_COLUMNS)]


def compare_span_durations(
    session: Session,
    *,
    model: str,
    baseline_start: dt.datetime,
    baseline_end: dt.datetime,
    start: dt.datetime,
    end: dt.datetime,
) -> pd.DataFrame:
    """Span durations of a model in a baseline window and a current window, per span name:
    which span (say `feature_store.lookup`) grew. The root-cause diagnosis reads this.

    Returns:
        DataFrame with columns name, then baseline_ and current_ versions of num_spans,
        num_errors, mean_ms, p50_ms and p95_ms (NaN, or 0 for counts, where a name is absent
        from a window), and mean_change_ms and p95_change_ms (current minus baseline); sorted
        by p95_change_ms, largest growth first.
    """
    baseline = span_duration_summary(session, model=model, start=baseline_start, end=baseline_end)
    current = span_duration_summary(session, model=model, start=start, end=end)
    merged = baseline.add_prefix("baseline_").merge(
        current.add_prefix("current_"),
        how="outer",
        left_on="baseline_name",
        right_on="current_name",
    )
    merged.insert(0, "name", merged["baseline_name"].fillna(merged["current_name"]))
    merged = merged.drop(columns=["baseline_name", "current_name"])
    for column in ("num_spans", "num_errors"):
        for window in ("baseline", "current"):
            merged[f"{window}_{column}"] = merged[f"{window}_{column}"].fillna(0).astype("int64")
    merged["mean_change_ms"] = merged["current_mean_ms"] - merged["baseline_mean_ms"]
    merged["p95_change_ms"] = merged["current_p95_ms"] - merged["baseline_p95_ms"]
    return merged.sort_values(
        ["p95_change_ms", "name"], ascending=[False, True], na_position="last", ignore_index=True
    )


def _dimension(model: str | None, service_name: str | None) -> tuple[str, str]:
    if model is not None:
        return MODEL, model
    if service_name is not None:
        return SERVICE, service_name
    raise ValueError("give a model or a service")


def _rollups(
    session: Session,
    dim_key: str,
    dim_value: str,
    start: dt.datetime,
    end: dt.datetime,
    names: Sequence[str] | None,
) -> pd.DataFrame:
    """Span rollups in the column names `summarize_rollups` reads."""
    frame = rollup_store.load_span_rollups(
        session, dim_key=dim_key, dim_value=dim_value, start=start, end=end, names=names
    )
    return frame.rename(columns={"num_spans": "num_requests", "duration_sum_ms": "latency_sum_ms"})
