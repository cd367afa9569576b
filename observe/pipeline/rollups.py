"""Maintaining latency rollups at ingest: bin the new records, merge into the locked rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy.orm import Session

from analyzers.histograms import Histogram, histograms_by_group
from observe.schemas.record_table import KEY_SEPARATOR, RecordTable
from observe.storage import rollups as rollup_store
from observe.storage.rollups import RollupKey, RollupRow

BUCKET_SECONDS = 60

K = TypeVar("K", bound=tuple[Any, ...])
D = TypeVar("D")


class _KeyedRow(Protocol):
    key: Any


R = TypeVar("R", bound=_KeyedRow)


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
    """The columns of a batch of records that rollups and the version registry need, as numpy
    arrays: per-record Python work is what limits ingest, so everything here is vectorized."""

    versions: list[tuple[str, str]]
    version_codes: npt.NDArray[np.int64]
    epoch_seconds: npt.NDArray[np.float64]
    latency_ms: npt.NDArray[np.float64]
    is_error: npt.NDArray[np.bool_]
    input_size: npt.NDArray[np.float64]
    tags: Mapping[str, pa.Array]

    @classmethod
    def of(cls, table: RecordTable) -> RecordColumns:
        """The columns of `table`; versions are numbered in the order they first appear."""
        pairs = pc.binary_join_element_wise(
            table.column("model"), table.column("model_version"), KEY_SEPARATOR
        )
        encoded = pc.dictionary_encode(pairs)
        micros = table.column("timestamp").cast(pa.int64()).to_numpy()
        return cls(
            versions=[_model_version(pair) for pair in encoded.dictionary.to_pylist()],
            version_codes=encoded.indices.to_numpy().astype(np.int64),
            epoch_seconds=micros / 1e6,
            latency_ms=table.column("latency_ms").to_numpy(),
            is_error=pc.equal(table.column("status"), "error").to_numpy(zero_copy_only=False),
            input_size=pc.fill_null(table.column("input_size"), np.nan).to_numpy(),
            tags=table.tag_values,
        )


def _model_version(pair: str) -> tuple[str, str]:
    model, version = pair.split(KEY_SEPARATOR, 1)
    return model, version


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
    lock, insert = rollup_store.lock_latency_rollups, rollup_store.insert_latency_rollups
    merge_deltas(session, deltas, lock, insert, rollup_store.save_latency_rollups, _new_row, _merge)
    return len(deltas)


def merge_deltas(
    session: Session,
    deltas: Mapping[K, D],
    lock: Callable[[Session, Iterable[K]], dict[K, R]],
    insert: Callable[[Session, Sequence[R]], set[K]],
    save: Callable[[Session, Iterable[R]], None],
    new_row: Callable[[K, D], R],
    merge: Callable[[R, D], None],
) -> None:
    """Add `deltas` to their stored rows, under a row lock, creating the rows not stored yet.

    `lock`, `insert` and `save` are the storage functions of one kind of rollup; `new_row`
    makes a row from a delta and `merge` adds a delta to a stored row.
    """
    stored = lock(session, deltas)
    # Sorted, like the locks, so that concurrent writers inserting the same keys cannot deadlock.
    new_rows = [new_row(key, deltas[key]) for key in sorted(deltas) if key not in stored]
    inserted = insert(session, new_rows)
    raced = [row.key for row in new_rows if row.key not in inserted]
    if raced:  # another writer created these rows since we looked: merge into theirs
        stored.update(lock(session, raced))
    for row in stored.values():
        merge(row, deltas[row.key])
    save(session, stored.values())


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
        values = columns.tags.get(tag)
        if values is None or values.null_count == len(values):
            continue
        present = values.is_valid().to_numpy(zero_copy_only=False)
        names, codes = _sorted_codes(values.filter(present))
        positions.append(np.flatnonzero(present))
        dim_codes.append(codes + len(dims))
        dims += [(tag, name) for name in names]
    position = np.concatenate(positions)
    unique, group = _unique_rows(
        columns.version_codes[position], np.concatenate(dim_codes), minutes[position]
    )
    keys = [
        (*columns.versions[version], *dims[dim], minute_start(int(minute)))
        for version, dim, minute in unique.tolist()
    ]
    return keys, position, group


def _sorted_codes(values: pa.Array) -> tuple[list[str], npt.NDArray[np.int64]]:
    """The distinct values in sorted order, and each value's index among them."""
    encoded = pc.dictionary_encode(values)
    distinct = encoded.dictionary.to_pylist()
    order = sorted(range(len(distinct)), key=distinct.__getitem__)
    rank = np.empty(len(distinct), dtype=np.int64)
    rank[order] = np.arange(len(distinct))
    return [distinct[i] for i in order], rank[encoded.indices.to_numpy()]


def _unique_rows(
    *columns: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The distinct rows of the stacked non-negative columns in lexicographic order, and each
    row's index among them. Rows are packed into one integer each when they fit (a sort of
    integers, many times faster than numpy's unique over rows)."""
    offsets = [column.min() for column in columns]
    spans = [
        int(column.max()) - int(offset) + 1 for column, offset in zip(columns, offsets, strict=True)
    ]
    if np.prod([float(span) for span in spans]) >= 2**62:
        unique, group = np.unique(np.stack(columns, axis=1), axis=0, return_inverse=True)
        return unique, group.reshape(-1).astype(np.int64)
    packed = np.zeros(columns[0].size, dtype=np.int64)
    for column, offset, span in zip(columns, offsets, spans, strict=True):
        packed = packed * span + (column - offset)
    distinct, group = np.unique(packed, return_inverse=True)
    unpacked = []
    for offset, span in zip(reversed(offsets), reversed(spans), strict=True):
        unpacked.append(distinct % span + offset)
        distinct = distinct // span
    return np.stack(unpacked[::-1], axis=1), group.astype(np.int64)


def minute_start(minute: int) -> dt.datetime:
    """The start of minute number `minute` since 1970 (a bucket of BUCKET_SECONDS)."""
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
