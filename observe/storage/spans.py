"""Spans: idempotent bulk insert, linking to models, and a trace's spans."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from observe.db.models import Span
from observe.schemas.spans import SpanIn
from observe.storage._sql import chunks, copy_rows, dialect_of, upsert

SPAN_COLUMNS = (
    "trace_id",
    "span_id",
    "parent_span_id",
    "service_name",
    "name",
    "kind",
    "start_at",
    "end_at",
    "duration_ms",
    "status_code",
    "status_message",
    "attributes",
    "resource_attributes",
    "model",
)
_COPY_COLUMNS = (*SPAN_COLUMNS, "received_at")


def insert_spans(
    session: Session,
    spans: Sequence[SpanIn],
    models: Sequence[str | None],
    *,
    received_at: dt.datetime,
) -> list[int]:
    """Store the spans whose (trace_id, span_id) is not stored yet, each with its model.

    A span sent again, within the batch or in an earlier one, is not written twice. The caller
    owns the transaction.

    Args:
        models: the model of each span (its own, or its trace's), None where unknown.

    Returns:
        Positions (in `spans`) of the spans stored now.
    """
    first: dict[tuple[str, str], int] = {}
    for position, span in enumerate(spans):
        first.setdefault((span.trace_id, span.span_id), position)
    if not first:
        return []
    positions = list(first.values())
    if dialect_of(session) == "postgresql":
        inserted = _insert_postgres(session, spans, models, positions, received_at)
    else:
        inserted = _insert_portable(session, spans, models, positions, received_at)
    return sorted(position for key, position in first.items() if key in inserted)


def _insert_portable(
    session: Session,
    spans: Sequence[SpanIn],
    models: Sequence[str | None],
    positions: list[int],
    received_at: dt.datetime,
) -> set[tuple[str, str]]:
    rows = [_row(spans[i], models[i], received_at) for i in positions]
    statement = (
        upsert(session, Span.__table__)
        .on_conflict_do_nothing(index_elements=["trace_id", "span_id"])
        .returning(Span.trace_id, Span.span_id)
    )
    return {(trace_id, span_id) for trace_id, span_id in session.execute(statement, rows)}


def _insert_postgres(
    session: Session,
    spans: Sequence[SpanIn],
    models: Sequence[str | None],
    positions: list[int],
    received_at: dt.datetime,
) -> set[tuple[str, str]]:
    """COPY straight into the table; if a span is already there (a resent export), COPY into
    a staging table instead and insert from it with ON CONFLICT DO NOTHING, as records do."""
    rows = [_copy_row(spans[i], models[i], received_at.isoformat()) for i in positions]
    try:
        with session.begin_nested():
            copy_rows(session, "spans", _COPY_COLUMNS, rows)
        return {(row[0], row[1]) for row in rows}
    except IntegrityError as error:
        if not isinstance(error.orig, psycopg.errors.UniqueViolation):
            raise
    columns = ", ".join(_COPY_COLUMNS)
    session.execute(
        text(
            "CREATE TEMPORARY TABLE observe_staging_spans "
            "(LIKE spans INCLUDING DEFAULTS) ON COMMIT DROP"
        )
    )
    copy_rows(session, "observe_staging_spans", _COPY_COLUMNS, rows)
    inserted = session.execute(
        text(
            f"INSERT INTO spans ({columns}) SELECT {columns} FROM observe_staging_spans "
            "ON CONFLICT (trace_id, span_id) DO NOTHING RETURNING trace_id, span_id"
        )
    )
    keys = {(trace_id, span_id) for trace_id, span_id in inserted}
    session.execute(text("DROP TABLE observe_staging_spans"))
    return keys


def _copy_row(span: SpanIn, model: str | None, received_at: str) -> tuple[Any, ...]:
    """One row of `_COPY_COLUMNS` in COPY's text format (JSON and timestamps as text)."""
    return (
        span.trace_id,
        span.span_id,
        span.parent_span_id,
        span.service_name,
        span.name,
        span.kind,
        span.start_at.isoformat(),
        span.end_at.isoformat(),
        span.duration_ms,
        span.status_code,
        span.status_message,
        None if span.attributes is None else orjson.dumps(span.attributes).decode(),
        None
        if span.resource_attributes is None
        else orjson.dumps(span.resource_attributes).decode(),
        model,
        received_at,
    )


def _row(span: SpanIn, model: str | None, received_at: dt.datetime) -> dict[str, Any]:
    return {
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "parent_span_id": span.parent_span_id,
        "service_name": span.service_name,
        "name": span.name,
        "kind": span.kind,
        "start_at": span.start_at,
        "end_at": span.end_at,
        "duration_ms": span.duration_ms,
        "status_code": span.status_code,
        "status_message": span.status_message,
        "attributes": span.attributes,
        "resource_attributes": span.resource_attributes,
        "model": model,
        "received_at": received_at,
    }


@dataclass(frozen=True)
class LinkedSpan:
    """A stored span that was just linked to a model, as the rollups need it."""

    model: str
    name: str
    kind: str
    start_at: dt.datetime
    duration_ms: float
    is_error: bool
    is_root: bool


def link_spans_to_models(session: Session, trace_models: Mapping[str, str]) -> list[LinkedSpan]:
    """Give the stored spans of these traces that have no model their trace's model.

    Returns:
        The spans linked now.
    """
    by_model: dict[str, list[str]] = {}
    for trace_id, model in sorted(trace_models.items()):
        by_model.setdefault(model, []).append(trace_id)
    linked = []
    for model, trace_ids in by_model.items():
        for chunk in chunks(trace_ids):
            statement = (
                update(Span)
                .where(Span.trace_id.in_(chunk), Span.model.is_(None))
                .values(model=model)
                .returning(
                    Span.name,
                    Span.kind,
                    Span.start_at,
                    Span.duration_ms,
                    Span.status_code,
                    Span.parent_span_id,
                )
                .execution_options(synchronize_session=False)
            )
            linked += [
                LinkedSpan(
                    model, name, kind, _as_utc(start), duration, status == "error", parent is None
                )
                for name, kind, start, duration, status, parent in session.execute(statement)
            ]
    return linked


def load_trace_spans(session: Session, trace_id: str) -> list[dict[str, Any]]:
    """The stored spans of a trace, in start order.

    Returns:
        Dicts with `SPAN_COLUMNS`.
    """
    table = Span.__table__
    query = (
        select(*(table.c[name] for name in SPAN_COLUMNS))
        .where(table.c.trace_id == trace_id)
        .order_by(table.c.start_at, table.c.span_id)
    )
    return [dict(row._mapping) for row in session.execute(query)]


def _as_utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
