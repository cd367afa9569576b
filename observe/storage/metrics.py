"""Metric sample reads aggregated per time bucket, so charts of long windows stay small."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pandas as pd
from sqlalchemy import BigInteger, cast, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from observe.db.models import MetricSample
from observe.storage._sql import dialect_of

SERIES_COLUMNS = (
    "bucket_start",
    "host",
    "resource",
    "name",
    "mean",
    "max",
    "min",
    "num_samples",
)


def load_metric_series(
    session: Session,
    *,
    start: dt.datetime,
    end: dt.datetime,
    bucket_seconds: int,
    names: Sequence[str] | None = None,
    hosts: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Mean, max and min of each (host, resource, name) series per time bucket in [start, end).

    Buckets are counted from the Unix epoch, so 1-hour buckets start on the hour. The database
    does the grouping: the result has one row per series and bucket, whatever the sample rate.

    Args:
        bucket_seconds: bucket length, at least 1.
        names: only these metric names (e.g. gpu_utilization_pct); None for all.
        hosts: only these hosts; None for all.

    Returns:
        DataFrame with `SERIES_COLUMNS`, ordered by host, resource, name and bucket;
        `bucket_start` is a UTC timestamp.
    """
    if bucket_seconds < 1:
        raise ValueError("bucket_seconds must be at least 1")
    bucket = _bucket_index(session, bucket_seconds)
    query = (
        select(
            bucket.label("bucket"),
            MetricSample.host,
            MetricSample.resource,
            MetricSample.name,
            func.avg(MetricSample.value),
            func.max(MetricSample.value),
            func.min(MetricSample.value),
            func.count(),
        )
        .where(MetricSample.timestamp >= start, MetricSample.timestamp < end)
        .group_by(bucket, MetricSample.host, MetricSample.resource, MetricSample.name)
        .order_by(MetricSample.host, MetricSample.resource, MetricSample.name, bucket)
    )
    if names:
        query = query.where(MetricSample.name.in_(list(names)))
    if hosts:
        query = query.where(MetricSample.host.in_(list(hosts)))
    frame = pd.DataFrame(session.execute(query).all(), columns=["bucket", *SERIES_COLUMNS[1:]])
    frame.insert(
        0,
        "bucket_start",
        pd.to_datetime(frame.pop("bucket").astype("int64") * bucket_seconds, unit="s", utc=True),
    )
    for column in ("mean", "max", "min"):
        frame[column] = frame[column].astype(float)
    frame["num_samples"] = frame["num_samples"].astype("int64")
    return frame


def list_metric_hosts(
    session: Session,
    *,
    start: dt.datetime,
    end: dt.datetime,
    names: Sequence[str] | None = None,
) -> list[str]:
    """Hosts with samples in [start, end), optionally only of some metric names, sorted."""
    query = (
        select(MetricSample.host)
        .distinct()
        .where(MetricSample.timestamp >= start, MetricSample.timestamp < end)
    )
    if names:
        query = query.where(MetricSample.name.in_(list(names)))
    return sorted(session.scalars(query))


def _bucket_index(session: Session, bucket_seconds: int) -> ColumnElement[int]:
    """floor(epoch seconds / bucket_seconds) of each sample's timestamp, in SQL."""
    if dialect_of(session) == "postgresql":
        epoch = func.extract("epoch", MetricSample.timestamp)
        return cast(func.floor(epoch / bucket_seconds), BigInteger)
    # SQLite keeps UTC text; strftime('%s') reads it as UTC epoch seconds.
    epoch_text = func.strftime("%s", MetricSample.timestamp)
    return cast(cast(epoch_text, BigInteger) / bucket_seconds, BigInteger)
