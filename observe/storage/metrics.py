"""Metric sample reads aggregated per time bucket, so charts of long windows stay small."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pandas as pd
from sqlalchemy import BigInteger, cast, func, literal, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from observe.db.models import MetricSample
from observe.storage._sql import dialect_of

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
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
    bucket, bucket_epoch = _bucket_start(session, bucket_seconds)
    query = (
        select(
            bucket_epoch,
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
    )
    if names:
        query = query.where(MetricSample.name.in_(list(names)))
    if hosts:
        query = query.where(MetricSample.host.in_(list(hosts)))
    frame = pd.DataFrame(session.execute(query).all(), columns=["bucket", *SERIES_COLUMNS[1:]])
    frame.insert(
        0, "bucket_start", pd.to_datetime(frame.pop("bucket").astype("int64"), unit="s", utc=True)
    )
    # Sorted here rather than in SQL: an ORDER BY makes Postgres sort every sample by its
    # text columns before grouping, instead of hashing them.
    frame = frame.sort_values(["host", "resource", "name", "bucket_start"], ignore_index=True)
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


def _bucket_start(
    session: Session, bucket_seconds: int
) -> tuple[ColumnElement[Any], ColumnElement[int]]:
    """The expression to group samples by (their bucket), and its start in epoch seconds.

    The epoch is computed from the grouped expression, so once per bucket, not per sample.
    """
    if dialect_of(session) == "postgresql":
        # date_bin (Postgres 14+) is much cheaper per row than arithmetic on
        # extract(epoch ...), which is numeric since Postgres 14.
        bucket: ColumnElement[Any] = func.date_bin(
            literal(dt.timedelta(seconds=bucket_seconds)), MetricSample.timestamp, literal(EPOCH)
        )
        return bucket, cast(func.extract("epoch", bucket), BigInteger)
    # SQLite keeps UTC text; strftime('%s') reads it as UTC epoch seconds.
    epoch = cast(func.strftime("%s", MetricSample.timestamp), BigInteger)
    bucket = (epoch // bucket_seconds) * bucket_seconds
    return bucket, bucket
