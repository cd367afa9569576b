"""Events (deploys and other changes) and metric samples."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from observe.db.models import Event, MetricSample
from observe.schemas.records import EventIn, MetricSampleIn
from observe.storage._sql import upsert


def insert_events(
    session: Session, events: Sequence[EventIn], *, received_at: dt.datetime
) -> tuple[int, int]:
    """Store events; an identical event (same fields) is stored once.

    Returns:
        (number new, number of duplicates).
    """
    rows: dict[str, dict[str, Any]] = {}
    for event in events:
        row = event.model_dump()
        row["dedupe_key"] = event.dedupe_key()
        row["received_at"] = received_at
        rows.setdefault(row["dedupe_key"], row)
    statement = (
        upsert(session, Event.__table__)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(Event.id)
    )
    num_new = len(session.execute(statement, list(rows.values())).all()) if rows else 0
    return num_new, len(events) - num_new


def insert_metric_samples(session: Session, samples: Sequence[MetricSampleIn]) -> tuple[int, int]:
    """Store samples; a repeat of (host, resource, name, timestamp) is not stored twice.

    Returns:
        (number new, number of duplicates).
    """
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    for sample in samples:
        rows.setdefault(
            (sample.host, sample.resource, sample.name, sample.timestamp), sample.model_dump()
        )
    statement = (
        upsert(session, MetricSample.__table__)
        .on_conflict_do_nothing(index_elements=["host", "resource", "name", "timestamp"])
        .returning(MetricSample.id)
    )
    num_new = len(session.execute(statement, list(rows.values())).all()) if rows else 0
    return num_new, len(samples) - num_new


def load_events(
    session: Session,
    *,
    model: str | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    kinds: Sequence[str] | None = None,
) -> list[Event]:
    """Events in [start, end), oldest first, optionally of one model and some kinds."""
    query = select(Event).order_by(Event.timestamp, Event.id)
    if model is not None:
        query = query.where(Event.model == model)
    if start is not None:
        query = query.where(Event.timestamp >= start)
    if end is not None:
        query = query.where(Event.timestamp < end)
    if kinds:
        query = query.where(Event.kind.in_(list(kinds)))
    return list(session.scalars(query))


def load_metric_samples(
    session: Session,
    *,
    start: dt.datetime,
    end: dt.datetime,
    names: Sequence[str] | None = None,
    hosts: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Samples in [start, end) as a DataFrame: timestamp, host, resource, name, value, tags."""
    query = select(
        MetricSample.timestamp,
        MetricSample.host,
        MetricSample.resource,
        MetricSample.name,
        MetricSample.value,
        MetricSample.tags,
    ).where(MetricSample.timestamp >= start, MetricSample.timestamp < end)
    if names:
        query = query.where(MetricSample.name.in_(list(names)))
    if hosts:
        query = query.where(MetricSample.host.in_(list(hosts)))
    query = query.order_by(MetricSample.timestamp)
    columns = ["timestamp", "host", "resource", "name", "value", "tags"]
    return pd.DataFrame(session.execute(query).all(), columns=columns)


def summarize_metric_samples(
    session: Session,
    *,
    start: dt.datetime,
    end: dt.datetime,
    hosts: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Samples in [start, end) aggregated per series, in the database.

    Returns:
        DataFrame with columns host, resource, name, mean, max, count.
    """
    query = (
        select(
            MetricSample.host,
            MetricSample.resource,
            MetricSample.name,
            func.avg(MetricSample.value),
            func.max(MetricSample.value),
            func.count(),
        )
        .where(MetricSample.timestamp >= start, MetricSample.timestamp < end)
        .group_by(MetricSample.host, MetricSample.resource, MetricSample.name)
    )
    if hosts:
        query = query.where(MetricSample.host.in_(list(hosts)))
    columns = ["host", "resource", "name", "mean", "max", "count"]
    frame = pd.DataFrame(session.execute(query).all(), columns=columns)
    return frame.astype({"mean": float, "max": float, "count": int})
