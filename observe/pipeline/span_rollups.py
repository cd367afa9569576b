"""Maintaining span-duration rollups at ingest: bin new spans per minute, merge under lock.

Every stored span counts once towards its service's rollup (`dim_key` "service") and, once its
model is known, once towards its model's (`dim_key` "model"); the histograms are those of the
latency rollups (analyzers.histograms), so percentiles over any window come from merged buckets.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session

from analyzers.histograms import Histogram, histograms_by_group
from observe.pipeline.rollups import BUCKET_SECONDS, merge_deltas, minute_start
from observe.storage import span_rollups as rollup_store
from observe.storage.span_rollups import SpanRollupKey, SpanRollupRow

MODEL = "model"
SERVICE = "service"


@dataclass(frozen=True)
class RollupEntry:
    """One span's contribution to one rollup: (dim_key, dim_value) say which."""

    dim_key: str
    dim_value: str
    name: str
    kind: str
    start_at: dt.datetime
    duration_ms: float
    is_error: bool
    is_root: bool


@dataclass(frozen=True)
class _Delta:
    kind: str
    num_spans: int
    num_errors: int
    num_roots: int
    duration_sum_ms: float
    duration_min_ms: float
    duration_max_ms: float
    histogram: Histogram


def update_span_rollups(session: Session, entries: Sequence[RollupEntry]) -> int:
    """Add span durations to their per-minute rollups.

    Returns:
        Number of rollup rows touched.
    """
    if not entries:
        return 0
    deltas = _deltas(entries)
    lock, insert = rollup_store.lock_span_rollups, rollup_store.insert_span_rollups
    merge_deltas(session, deltas, lock, insert, rollup_store.save_span_rollups, _new_row, _merge)
    return len(deltas)


def _deltas(entries: Sequence[RollupEntry]) -> dict[SpanRollupKey, _Delta]:
    codes: dict[tuple[str, str, str, int], int] = {}
    groups = np.fromiter(
        (
            codes.setdefault(
                (e.dim_key, e.dim_value, e.name, int(e.start_at.timestamp()) // BUCKET_SECONDS),
                len(codes),
            )
            for e in entries
        ),
        dtype=np.int64,
        count=len(entries),
    )
    durations = np.fromiter((e.duration_ms for e in entries), dtype=np.float64, count=len(entries))
    errors = np.fromiter((e.is_error for e in entries), dtype=np.float64, count=len(entries))
    roots = np.fromiter((e.is_root for e in entries), dtype=np.float64, count=len(entries))
    kinds: dict[int, str] = {}
    for group, entry in zip(groups.tolist(), entries, strict=True):
        kinds.setdefault(group, entry.kind)
    num_groups = len(codes)
    counts = np.bincount(groups, minlength=num_groups)
    sums = np.bincount(groups, weights=durations, minlength=num_groups)
    num_errors = np.bincount(groups, weights=errors, minlength=num_groups)
    num_roots = np.bincount(groups, weights=roots, minlength=num_groups)
    minima = np.full(num_groups, np.inf)
    maxima = np.full(num_groups, -np.inf)
    np.minimum.at(minima, groups, durations)
    np.maximum.at(maxima, groups, durations)
    histograms = histograms_by_group(groups, durations, num_groups)
    return {
        (key, value, name, minute_start(minute)): _Delta(
            kind=kinds[g],
            num_spans=int(counts[g]),
            num_errors=int(num_errors[g]),
            num_roots=int(num_roots[g]),
            duration_sum_ms=float(sums[g]),
            duration_min_ms=float(minima[g]),
            duration_max_ms=float(maxima[g]),
            histogram=histograms[g],
        )
        for (key, value, name, minute), g in codes.items()
    }


def _new_row(key: SpanRollupKey, delta: _Delta) -> SpanRollupRow:
    return SpanRollupRow(
        id=None,
        key=key,
        kind=delta.kind,
        num_spans=delta.num_spans,
        num_errors=delta.num_errors,
        num_roots=delta.num_roots,
        duration_sum_ms=delta.duration_sum_ms,
        duration_min_ms=delta.duration_min_ms,
        duration_max_ms=delta.duration_max_ms,
        histogram=delta.histogram.to_bytes(),
    )


def _merge(row: SpanRollupRow, delta: _Delta) -> None:
    row.num_spans += delta.num_spans
    row.num_errors += delta.num_errors
    row.num_roots += delta.num_roots
    row.duration_sum_ms += delta.duration_sum_ms
    row.duration_min_ms = min(row.duration_min_ms, delta.duration_min_ms)
    row.duration_max_ms = max(row.duration_max_ms, delta.duration_max_ms)
    stored = Histogram.from_bytes(row.histogram)
    row.histogram = stored.merge(delta.histogram).to_bytes()
