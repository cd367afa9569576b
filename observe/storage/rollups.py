"""Latency rollups: per-minute rows that the ingest pipeline merges into under a row lock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import delete, select, tuple_, update
from sqlalchemy.orm import Session

from observe.db.models import InferenceRecord, LatencyRollup
from observe.storage._sql import chunks, dialect_of, upsert

#: (model, model_version, dim_key, dim_value, bucket_start)
RollupKey = tuple[str, str, str, str, dt.datetime]

ROLLUP_COLUMNS = (
    "model_version",
    "dim_value",
    "bucket_start",
    "num_requests",
    "num_errors",
    "latency_sum_ms",
    "latency_min_ms",
    "latency_max_ms",
    "num_with_input_size",
    "input_size_sum",
    "histogram",
)


@dataclass
class RollupRow:
    """One rollup row's mutable aggregate. An empty `histogram` (b"") is an empty histogram."""

    id: int
    key: RollupKey
    num_requests: int
    num_errors: int
    latency_sum_ms: float
    latency_min_ms: float
    latency_max_ms: float
    num_with_input_size: int
    input_size_sum: float
    histogram: bytes


def lock_latency_rollups(session: Session, keys: Iterable[RollupKey]) -> dict[RollupKey, RollupRow]:
    """Rows for `keys`, created empty where missing and locked until the transaction ends.

    Keys are locked in sorted order so that concurrent writers cannot deadlock.
    """
    ordered = sorted(set(keys))
    _insert_missing(session, ordered)
    rows: dict[RollupKey, RollupRow] = {}
    columns = (
        LatencyRollup.model,
        LatencyRollup.model_version,
        LatencyRollup.dim_key,
        LatencyRollup.dim_value,
        LatencyRollup.bucket_start,
    )
    for chunk in chunks(ordered, 500):
        query = select(LatencyRollup).where(tuple_(*columns).in_(list(chunk))).order_by(*columns)
        if dialect_of(session) == "postgresql":
            query = query.with_for_update()
        for rollup in session.scalars(query):
            row = _rollup_row(rollup)
            rows[row.key] = row
    return rows


def _insert_missing(session: Session, keys: Sequence[RollupKey]) -> None:
    for chunk in chunks(keys, 500):
        values = [
            {
                "model": model,
                "model_version": version,
                "dim_key": dim_key,
                "dim_value": dim_value,
                "bucket_start": bucket_start,
                "num_requests": 0,
                "num_errors": 0,
                "latency_sum_ms": 0.0,
                "latency_min_ms": 0.0,
                "latency_max_ms": 0.0,
                "num_with_input_size": 0,
                "input_size_sum": 0.0,
                "histogram": b"",
            }
            for model, version, dim_key, dim_value, bucket_start in chunk
        ]
        statement = upsert(session, LatencyRollup.__table__).values(values).on_conflict_do_nothing()
        session.execute(statement)


def _rollup_row(rollup: LatencyRollup) -> RollupRow:
    return RollupRow(
        id=rollup.id,
        key=(
            rollup.model,
            rollup.model_version,
            rollup.dim_key,
            rollup.dim_value,
            rollup.bucket_start,
        ),
        num_requests=rollup.num_requests,
        num_errors=rollup.num_errors,
        latency_sum_ms=rollup.latency_sum_ms,
        latency_min_ms=rollup.latency_min_ms,
        latency_max_ms=rollup.latency_max_ms,
        num_with_input_size=rollup.num_with_input_size,
        input_size_sum=rollup.input_size_sum,
        histogram=rollup.histogram,
    )


def save_latency_rollups(session: Session, rows: Iterable[RollupRow]) -> None:
    """Write back rows obtained from `lock_latency_rollups` and merged by the caller."""
    values = [
        {
            "id": row.id,
            "num_requests": row.num_requests,
            "num_errors": row.num_errors,
            "latency_sum_ms": row.latency_sum_ms,
            "latency_min_ms": row.latency_min_ms,
            "latency_max_ms": row.latency_max_ms,
            "num_with_input_size": row.num_with_input_size,
            "input_size_sum": row.input_size_sum,
            "histogram": row.histogram,
        }
        for row in rows
    ]
    if values:
        session.execute(update(LatencyRollup), values)


def load_latency_rollups(
    session: Session,
    *,
    model: str,
    start: dt.datetime,
    end: dt.datetime,
    dim_key: str = "",
    model_versions: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Rollup rows of a model with bucket_start in [start, end).

    Args:
        dim_key: "" for whole versions, else a rolled-up tag key (one row per tag value).
        model_versions: only these versions; None for all.

    Returns:
        DataFrame with `ROLLUP_COLUMNS`; `histogram` holds the encoded bytes.
    """
    table = LatencyRollup.__table__
    query = select(*(table.c[name] for name in ROLLUP_COLUMNS)).where(
        table.c.model == model,
        table.c.dim_key == dim_key,
        table.c.bucket_start >= start,
        table.c.bucket_start < end,
        table.c.num_requests > 0,
    )
    if model_versions:
        query = query.where(table.c.model_version.in_(list(model_versions)))
    rows = session.execute(query).all()
    return pd.DataFrame(rows, columns=list(ROLLUP_COLUMNS))


def load_raw_latencies(
    session: Session,
    *,
    model: str,
    start: dt.datetime,
    end: dt.datetime,
    tag_key: str | None = None,
    model_versions: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Latency of every record of a model in [start, end), for slices that have no rollup.

    Returns:
        DataFrame with columns timestamp, model_version, dim_value (the tag's value, "" when
        no tag is asked for, None where a record lacks it), latency_ms, is_error.
    """
    dim = InferenceRecord.tags[tag_key].as_string() if tag_key else None
    query = select(
        InferenceRecord.timestamp,
        InferenceRecord.model_version,
        InferenceRecord.latency_ms,
        InferenceRecord.status,
        *([dim] if dim is not None else []),
    ).where(
        InferenceRecord.model == model,
        InferenceRecord.timestamp >= start,
        InferenceRecord.timestamp < end,
    )
    if model_versions:
        query = query.where(InferenceRecord.model_version.in_(list(model_versions)))
    columns = [
        "timestamp",
        "model_version",
        "latency_ms",
        "status",
        *(["dim_value"] if dim is not None else []),
    ]
    frame = pd.DataFrame(session.execute(query).all(), columns=columns)
    if dim is None:
        frame["dim_value"] = ""
    frame["is_error"] = frame["status"] == "error"
    return frame.drop(columns=["status"])


def delete_rollups_before(session: Session, cutoff: dt.datetime) -> int:
    """Delete rollup rows whose bucket starts before `cutoff`; returns the number deleted."""
    result = session.execute(delete(LatencyRollup).where(LatencyRollup.bucket_start < cutoff))
    return result.rowcount or 0
