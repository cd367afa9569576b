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


@dataclass(frozen=True)
class RecordColumns:
    """The columns of a batch of records that rollups and the version registry need, extracted
    once: per-record Python work is what limits ingest, so everything after is numpy."""

    versions: list[tuple[str, str]]
    version_codes: npt.NDArray[np.int64]
    epoch_seconds: npt.NDArray[np.float64]
    latency_ms: npt.NDArray[np.float64]
    is_error: npt.NDArray[np.bool_]
    input_size: npt.NDArray[np.float64]
    tags: list[dict[str, str] | None]

    @classmethod
    def of(cls, records: Sequence[InferenceRecordIn]) -> RecordColumns:
        count = len(records)
        codes: dict[tuple[str, str], int] = {}
        version_codes = np.fromiter(
            (codes.setdefault((r.model, r.model_version), len(codes)) for r in records),
            dtype=np.int64,
            count=count,
        )
        input_size = [r.input_size for r in records]
        return cls(
            versions=list(codes),
            version_codes=version_codes,
            epoch_seconds=np.fromiter(
                (r.timestamp.timestamp() for r in records), dtype=np.float64, count=count
            ),
            latency_ms=np.fromiter((r.latency_ms for r in records), dtype=np.float64, count=count),
            is_error=np.fromiter((r.status == "error" for r in records), dtype=bool, count=count),
            input_size=np.array(input_size, dtype=np.float64),  # None becomes NaN
            tags=[r.tags for r in records],
        )


def update_latency_rollups(
    session: Session, columns: RecordColumns, rollup_tags: Sequence[str]
) -> int:
    """Add newly stored records to their per-minute rollups (whole version and per tag value).

    Returns:
        Number of rollup rows touched.
    """
    if not columns.versions:
        return 0
    keys, positions, groups = _group_keys(columns, rollup_tags)
    deltas = _deltas(columns, keys, positions, groups)
    stored = rollup_store.lock_latency_rollups(session, deltas)
    # Sorted, like the locks, so that concurrent writers inserting the same keys cannot deadlock.
    new_rows = [_new_row(key, deltas[key]) for key in sorted(deltas) if key not in stored]
    inserted = rollup_store.insert_latency_rollups(session, new_rows)
    raced = [row.key for row in new_rows if row.key not in inserted]
    if raced:  # another writer created these rows since we looked: merge into theirs
        stored.update(rollup_store.lock_latency_rollups(session, raced))
    for row in stored.values():
        _merge(row, deltas[row.key])
    rollup_store.save_latency_rollups(session, stored.values())
    return len(deltas)


def _group_keys(
    columns: RecordColumns, rollup_tags: Sequence[str]
) -> tuple[list[RollupKey], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The distinct rollup keys, and for every (record, key) pair the record's position and the
    key's index. Each record counts towards its whole version and each rolled-up tag it has."""
    minutes = (columns.epoch_seconds // BUCKET_SECONDS).astype(np.int64)
    dims: list[tuple[str, str]] = [("", "")]
    positions = [np.arange(minutes.size)]
    dim_codes = [np.zeros(minutes.size, dtype=np.int64)]
    for tag in rollup_tags:
        values = [t.get(tag) if t else None for t in columns.tags]
        present = np.fromiter((v is not None for v in values), dtype=bool, count=len(values))
        if not present.any():
            continue
        where = np.flatnonzero(present)
        names, codes = np.unique([values[i] for i in where], return_inverse=True)
        positions.append(where)
        dim_codes.append(codes.astype(np.int64) + len(dims))
        dims += [(tag, str(name)) for name in names]
    position = np.concatenate(positions)
    pair = np.stack(
        [columns.version_codes[position], np.concatenate(dim_codes), minutes[position]], axis=1
    )
    unique, group = np.unique(pair, axis=0, return_inverse=True)
    keys = [
        (*columns.versions[version], *dims[dim], _minute_start(int(minute)))
        for version, dim, minute in unique.tolist()
    ]
    return keys, position, group.reshape(-1).astype(np.int64)


def _minute_start(minute: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(minute * BUCKET_SECONDS, tz=dt.UTC)


def _deltas(
    columns: RecordColumns,
    keys: list[RollupKey],
    positions: npt.NDArray[np.int64],
    groups: npt.NDArray[np.int64],
) -> dict[RollupKey, _Delta]:
    num_groups = len(keys)
    values = columns.latency_ms[positions]
    errors = columns.is_error[positions]
    sizes = columns.input_size[positions]
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


def _new_row(key: RollupKey, delta: _Delta) -> RollupRow:
    return RollupRow(
        id=None,
        key=key,
        num_requests=delta.num_requests,
        num_errors=delta.num_errors,
        latency_sum_ms=delta.latency_sum_ms,
        latency_min_ms=delta.latency_min_ms,
        latency_max_ms=delta.latency_max_ms,
        num_with_input_size=delta.num_with_input_size,
        input_size_sum=delta.input_size_sum,
        histogram=delta.histogram.to_bytes(),
    )


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
