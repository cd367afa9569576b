"""Span-duration rollups: per-minute rows per (model or service, span name), merged under lock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from observe.db.models import SpanRollup
from observe.storage import _merged_rows

#: (dim_key, dim_value, span name, bucket_start); dim_key is "model" or "service".
SpanRollupKey = tuple[str, str, str, dt.datetime]

_KEY = ("dim_key", "dim_value", "name", "bucket_start")
_VALUES = (
    "kind",
    "num_spans",
    "num_errors",
    "num_roots",
    "duration_sum_ms",
    "duration_min_ms",
    "duration_max_ms",
    "histogram",
)
SPAN_ROLLUP_COLUMNS = ("name", "bucket_start", *_VALUES)


@dataclass
class SpanRollupRow:
    """One rollup row's aggregate; `id` is None for a row not stored yet."""

    id: int | None
    key: SpanRollupKey
    kind: str
    num_spans: int
    num_errors: int
    num_roots: int
    duration_sum_ms: float
    duration_min_ms: float
    duration_max_ms: float
    histogram: bytes

    def values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _VALUES}


def lock_span_rollups(
    session: Session, keys: Iterable[SpanRollupKey]
) -> dict[SpanRollupKey, SpanRollupRow]:
    """The stored rows for `keys` (missing keys absent), locked until the transaction ends."""
    found = _merged_rows.lock_rows(session, SpanRollup, _KEY, _VALUES, keys)
    return {key: SpanRollupRow(key=key, **row) for key, row in found.items()}


def insert_span_rollups(session: Session, rows: Sequence[SpanRollupRow]) -> set[SpanRollupKey]:
    """Insert new rows; returns the keys inserted. A key another writer inserted meanwhile is
    skipped (the caller locks and merges it)."""
    values = [{**dict(zip(_KEY, row.key, strict=True)), **row.values()} for row in rows]
    return _merged_rows.insert_rows(session, SpanRollup, _KEY, values)


def save_span_rollups(session: Session, rows: Iterable[SpanRollupRow]) -> None:
    """Write back rows obtained from `lock_span_rollups` and merged by the caller."""
    _merged_rows.save_rows(session, SpanRollup, ({"id": row.id, **row.values()} for row in rows))


def load_span_rollups(
    session: Session,
    *,
    dim_key: str,
    dim_value: str,
    start: dt.datetime,
    end: dt.datetime,
    names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Rollup rows of a model or service with bucket_start in [start, end).

    Args:
        dim_key: "model" or "service".
        dim_value: the model or service name.
        names: only these span names; None for all.

    Returns:
        DataFrame with `SPAN_ROLLUP_COLUMNS`; `histogram` holds the encoded bytes.
    """
    table = SpanRollup.__table__
    query = select(*(table.c[name] for name in SPAN_ROLLUP_COLUMNS)).where(
        table.c.dim_key == dim_key,
        table.c.dim_value == dim_value,
        table.c.bucket_start >= start,
        table.c.bucket_start < end,
    )
    if names:
        query = query.where(table.c.name.in_(list(names)))
    return pd.DataFrame(session.execute(query).all(), columns=list(SPAN_ROLLUP_COLUMNS))


def delete_span_rollups_before(session: Session, cutoff: dt.datetime) -> int:
    """Delete rollup rows whose bucket starts before `cutoff`; returns the number deleted."""
    result = session.execute(delete(SpanRollup).where(SpanRollup.bucket_start < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
