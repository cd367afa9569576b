"""Deleting raw rows past their retention period, a bounded number per call."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from observe.db.models import InferenceRecord, Label, MetricSample, Span, Trace

#: Raw tables and the column their age is measured by.
RAW_TABLES: dict[str, tuple[type, InstrumentedAttribute[dt.datetime]]] = {
    "inference_records": (InferenceRecord, InferenceRecord.timestamp),
    "labels": (Label, Label.timestamp),
    "metric_samples": (MetricSample, MetricSample.timestamp),
    "spans": (Span, Span.start_at),
    "traces": (Trace, Trace.start_at),
}


def delete_raw_rows_before(session: Session, table: str, cutoff: dt.datetime, *, limit: int) -> int:
    """Delete up to `limit` rows of a raw table older than `cutoff`; returns how many."""
    model: Any
    model, column = RAW_TABLES[table]
    ids = select(model.id).where(column < cutoff).limit(limit).scalar_subquery()
    result = session.execute(delete(model).where(model.id.in_(ids)))
    return int(getattr(result, "rowcount", 0) or 0)
