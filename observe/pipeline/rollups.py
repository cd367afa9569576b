"""Maintaining latency rollups at ingest: bin the new records, merge into the locked rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sqlalchemy.orm import Session

from analyzers.histograms import Histogram, histograms_by_group
from observe.schemas.records import InferenceRecordIn
from observe.storage import rollups as rollup_store
from observe.storage.rollups import RollupKey, RollupRow

BUCKET_SECONDS = 60


@dataclass(frozen=True)
class _Delta:
    num_requests: int
    num_errors: int
    latency_sum_ms: float
    latency_min_ms: float
    latency_max_ms: float
    num_with_input_size: int
    input_size_sum: float
    histogram: Histogram


def bucket_start(timestamp: dt.datetime, bucket_seconds: int = BUCKET_SECONDS) -> dt.datetime:
    epoch = int(timestamp.timestamp()) // bucket_seconds * bucket_seconds
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC)


def update_latency_rollups(
    session: Session, records: Sequence[InferenceRecordIn], rollup_tags: Sequence[str]
) -> int:
    """Add newly stored records to their per-minute rollups (whole version and per tag value).

    Returns:
        Number of rollup rows touched.
    """
    if not records:
        return 0
    keys, group_ids = _group_keys(records, rollup_tags)
    deltas = _deltas(records, keys, group_ids)
    rows = rollup_store.lock_latency_rollups(session, deltas)
    for key, delta in deltas.items():
        _merge(rows[key], delta)
    rollup_store.save_latency_rollups(session, rows.values())
    return len(rows)


def _group_keys(
    records: Sequence[InferenceRecordIn], rollup_tags: Sequence[str]
) -> tuple[list[RollupKey], npt.NDArray[np.int64]]:
    """The distinct rollup keys, and (record position, key index) for every pair."""
    key_ids: dict[RollupKey, int] = {}
    pairs: list[tuple[int, int]] = []
    buckets: dict[int, dt.datetime] = {}
    for position, record in enumerate(records):
        epoch = int(record.timestamp.timestamp()) // BUCKET_SECONDS * BUCKET_SECONDS
        start = buckets.get(epoch)
        if start is None:
            start = buckets[epoch] = dt.datetime.fromtimestamp(epoch, tz=dt.UTC)
        dims = [("", "")]
        if record.tags:
            dims += [(tag, record.tags[tag]) for tag in rollup_tags if tag in record.tags]
        for dim_key, dim_value in dims:
            key = (record.model, record.model_version, dim_key, dim_value, start)
            pairs.append((position, key_ids.setdefault(key, len(key_ids))))
    return list(key_ids), np.asarray(pairs, dtype=np.int64)


def _deltas(
    records: Sequence[InferenceRecordIn], keys: list[RollupKey], pairs: npt.NDArray[np.int64]
) -> dict[RollupKey, _Delta]:
    positions, groups = pairs[:, 0], pairs[:, 1]
    num_groups = len(keys)
    latency = np.fromiter((r.latency_ms for r in records), dtype=np.float64, count=len(records))
    is_error = np.fromiter((r.status == "error" for r in records), dtype=bool, count=len(records))
    input_size = np.array([np.nan if r.input_size is None else r.input_size for r in records])
    values, errors, sizes = latency[positions], is_error[positions], input_size[positions]
    has_size = ~np.isnan(sizes)
    counts = np.bincount(groups, minlength=num_groups)
    sums = np.bincount(groups, weights=values, minlength=num_groups)
    num_errors = np.bincount(groups, weights=errors, minlength=num_groups)
    minima = np.full(num_groups, np.inf)
    maxima = np.full(num_groups, -np.inf)
    np.minimum.at(minima, groups, values)
    np.maximum.at(maxima, groups, values)
    size_counts = np.bincount(groups, weights=has_size, minlength=num_groups)
    size_sums = np.bincount(groups, weights=np.where(has_size, sizes, 0.0), minlength=num_groups)
    histograms = histograms_by_group(groups, values, num_groups)
    return {
        key: _Delta(
            num_requests=int(counts[g]),
            num_errors=int(num_errors[g]),
            latency_sum_ms=float(sums[g]),
            latency_min_ms=float(minima[g]),
            latency_max_ms=float(maxima[g]),
            num_with_input_size=int(size_counts[g]),
            input_size_sum=float(size_sums[g]),
            histogram=histograms[g],
        )
        for g, key in enumerate(keys)
    }


def _merge(row: RollupRow, delta: _Delta) -> None:
    was_empty = row.num_requests == 0
    row.num_requests += delta.num_requests
    row.num_errors += delta.num_errors
    row.latency_sum_ms += delta.latency_sum_ms
    row.latency_min_ms = (
        delta.latency_min_ms if was_empty else min(row.latency_min_ms, delta.latency_min_ms)
    )
    row.latency_max_ms = (
        delta.latency_max_ms if was_empty else max(row.latency_max_ms, delta.latency_max_ms)
    )
    row.num_with_input_size += delta.num_with_input_size
    row.input_size_sum += delta.input_size_sum
    stored = Histogram.from_bytes(row.histogram) if row.histogram else Histogram.empty()
    row.histogram = stored.merge(delta.histogram).to_bytes()
