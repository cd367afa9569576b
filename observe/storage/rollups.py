"""Latency rollups: per-minute rows that the ingest pipeline merges into under a row lock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from observe.db.models import InferenceRecord, LatencyRollup
from observe.storage import _merged_rows

#: (model, model_version, dim_key, dim_value, bucket_start)
RollupKey = tuple[str, str, str, str, dt.datetime]

_KEY_COLUMNS = ("model", "model_version", "dim_key", "dim_value", "bucket_start")
_VALUE_COLUMNS = (
    "num_requests",
    "num_errors",
    "latency_sum_ms",
    "latency_min_ms",
    "latency_max_ms",
    "num_with_input_size",
    "input_size_sum",
    "histogram",
)
ROLLUP_COLUMNS = ("model_version", "dim_value", "bucket_start", *_VALUE_COLUMNS)


@dataclass
class RollupRow:
    """One rollup row's aggregate; `id` is None for a row not stored yet."""

    id: int | None
    key: RollupKey
    num_requests: int
    num_errors: int
    latency_sum_ms: float
    latency_min_ms: float
    latency_max_ms: float
    num_with_input_size: int
    input_size_sum: float
    histogram: bytes

    def values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _VALUE_COLUMNS}


def lock_latency_rollups(session: Session, keys: Iterable[RollupKey]) -> dict[RollupKey, RollupRow]:
    """The stored rows for `keys` (missing keys are absent), locked until the transaction ends.

    Rows are locked in key order so that concurrent writers cannot deadlock.
    """
    found = _merged_rows.lock_rows(session, LatencyRollup, _KEY_COLUMNS, _VALUE_COLUMNS, keys)
    return {key: RollupRow(key=key, **row) for key, row in found.items()}


def insert_latency_rollups(session: Session, rows: Sequence[RollupRow]) -> set[RollupKey]:
    """Insert new rows; returns the keys inserted. A key another writer inserted meanwhile is
    skipped (the caller locks and merges it)."""
    values = [{**dict(zip(_KEY_COLUMNS, row.key, strict=True)), **row.values()} for row in rows]
    return _merged_rows.insert_rows(session, LatencyRollup, _KEY_COLUMNS, values)


def save_latency_rollups(session: Session, rows: Iterable[RollupRow]) -> None:
    """Write back rows obtained from `lock_latency_rollups` and merged by the caller."""
    _merged_rows.save_rows(session, LatencyRollup, ({"id": row.id, **row.values()} for row in rows))


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
    return int(getattr(result, "rowcount", 0) or 0)


def list_rollup_models(session: Session, *, start: dt.datetime, end: dt.datetime) -> list[str]:
    """Models with rollups (so with traffic) in [start, end), by name."""
    query = (
        select(LatencyRollup.model)
        .where(
            LatencyRollup.dim_key == "",
            LatencyRollup.bucket_start >= start,
            LatencyRollup.bucket_start < end,
        )
        .distinct()
        .order_by(LatencyRollup.model)
    )
    return list(session.scalars(query))


def list_rollup_dim_values(
    session: Session, *, model: str, dim_key: str, start: dt.datetime, end: dt.datetime
) -> list[str]:
    """The values of a rolled-up tag (such as the hosts) a model had in [start, end), sorted."""
    query = (
        select(LatencyRollup.dim_value)
        .where(
            LatencyRollup.model == model,
            LatencyRollup.dim_key == dim_key,
            LatencyRollup.bucket_start >= start,
            LatencyRollup.bucket_start < end,
        )
        .distinct()
        .order_by(LatencyRollup.dim_value)
    )
    return list(session.scalars(query))
