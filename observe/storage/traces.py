"""Trace summaries: one row per trace, merged into by every batch that adds spans to it."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from observe.db.models import Trace
from observe.storage import _merged_rows

_KEY = ("trace_id",)
_VALUES = (
    "model",
    "service_name",
    "root_name",
    "root_span_id",
    "start_at",
    "end_at",
    "duration_ms",
    "num_spans",
    "num_errors",
)


@dataclass
class TraceRow:
    """One trace's summary; `id` is None for a row not stored yet."""

    id: int | None
    trace_id: str
    model: str | None
    service_name: str | None
    root_name: str | None
    root_span_id: str | None
    start_at: dt.datetime
    end_at: dt.datetime
    duration_ms: float
    num_spans: int
    num_errors: int

    def values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _VALUES}


def lock_traces(session: Session, trace_ids: Iterable[str]) -> dict[str, TraceRow]:
    """The stored summaries of `trace_ids` (missing ones absent), locked until the transaction
    ends, in trace id order."""
    found = _merged_rows.lock_rows(session, Trace, _KEY, _VALUES, ((t,) for t in trace_ids))
    return {key[0]: TraceRow(trace_id=key[0], **row) for key, row in found.items()}


def insert_traces(session: Session, rows: Sequence[TraceRow]) -> set[str]:
    """Insert new summaries; returns the trace ids inserted. One another writer inserted
    meanwhile is skipped (the caller locks and merges it)."""
    values = [{"trace_id": row.trace_id, **row.values()} for row in rows]
    return {key[0] for key in _merged_rows.insert_rows(session, Trace, _KEY, values)}


def save_traces(session: Session, rows: Iterable[TraceRow]) -> None:
    """Write back summaries obtained from `lock_traces` and merged by the caller."""
    _merged_rows.save_rows(session, Trace, ({"id": row.id, **row.values()} for row in rows))


def get_trace(session: Session, trace_id: str) -> TraceRow | None:
    """One trace's summary, or None."""
    row = session.scalar(select(Trace).where(Trace.trace_id == trace_id))
    if row is None:
        return None
    return TraceRow(
        **{field.name: getattr(row, field.name) for field in dataclasses.fields(TraceRow)}
    )


TRACE_LIST_COLUMNS = ("trace_id", *_VALUES)


def count_traces(session: Session, *, model: str, start: dt.datetime, end: dt.datetime) -> int:
    """Traces of a model that started in [start, end) and have spans."""
    query = select(func.count()).where(
        Trace.model == model, Trace.start_at >= start, Trace.start_at < end, Trace.num_spans > 0
    )
    return int(session.scalar(query) or 0)


def load_slowest_traces(
    session: Session,
    *,
    start: dt.datetime,
    end: dt.datetime,
    model: str | None = None,
    service_name: str | None = None,
    has_error: bool | None = None,
    limit: int = 20,
) -> list[dict[str, Any]]:
    """Traces that started in [start, end), longest first, of a model and/or a root service.

    Traces known only from inference records (no span stored yet) are left out.

    Returns:
        Dicts with `TRACE_LIST_COLUMNS`.
    """
    query = select(*(Trace.__table__.c[name] for name in TRACE_LIST_COLUMNS)).where(
        Trace.start_at >= start, Trace.start_at < end, Trace.num_spans > 0
    )
    if model is not None:
        query = query.where(Trace.model == model)
    if service_name is not None:
        query = query.where(Trace.service_name == service_name)
    if has_error is not None:
        query = query.where(Trace.num_errors > 0 if has_error else Trace.num_errors == 0)
    query = query.order_by(Trace.duration_ms.desc(), Trace.trace_id).limit(limit)
    return [dict(row._mapping) for row in session.execute(query)]
