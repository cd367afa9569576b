"""Latency reads: percentile series and per-version summaries, from rollups where they exist.

Windows are resolved to whole output buckets: the start is floored and the end ceiled to a
multiple of the bucket length (counted from the Unix epoch), so 1-hour buckets start on the
hour. Rollups answer for whole versions and for tag keys listed in the `rollup_tags` setting;
any other tag is computed from raw records with the same histogram binning, so the two agree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sqlalchemy.orm import Session

from analyzers.histograms import bin_indices, decode_many, quantiles_by_group
from observe.pipeline.rollups import BUCKET_SECONDS
from observe.storage import rollups as rollup_store

DEFAULT_PERCENTILES = (50.0, 95.0, 99.0)
MAX_POINTS = 200_000
VERSION = "model_version"
ALL = "all"


@dataclass(frozen=True)
class LatencySeries:
    """Percentiles per (series, bucket). `frame` columns: series, bucket_start, num_requests,
    num_errors, error_rate, mean_ms, and one `p<percentile>` column per percentile."""

    start: dt.datetime
    end: dt.datetime
    bucket_seconds: int
    by: str
    source: str
    frame: pd.DataFrame


def percentile_column(percentile: float) -> str:
    return f"p{percentile:g}".replace(".", "_")


def align_window(
    start: dt.datetime, end: dt.datetime, bucket_seconds: int
) -> tuple[dt.datetime, dt.datetime]:
    first = int(start.timestamp()) // bucket_seconds * bucket_seconds
    last = -(-int(np.ceil(end.timestamp())) // bucket_seconds) * bucket_seconds
    return _utc(first), _utc(max(last, first + bucket_seconds))


def latency_series(
    session: Session,
    *,
    model: str,
    start: dt.datetime,
    end: dt.datetime,
    bucket_seconds: int = BUCKET_SECONDS,
    by: str = VERSION,
    model_versions: Sequence[str] | None = None,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
    rollup_tags: Sequence[str] = (),
) -> LatencySeries:
    """Latency percentiles of a model per time bucket, one series per version or tag value.

    Args:
        by: "model_version", "all" (every version merged) or a tag key.
        bucket_seconds: output bucket length, a multiple of 60.
    """
    if bucket_seconds < BUCKET_SECONDS or bucket_seconds % BUCKET_SECONDS:
        raise ValueError(f"bucket must be a positive multiple of {BUCKET_SECONDS} seconds")
    start, end = align_window(start, end, bucket_seconds)
    num_buckets = int((end - start).total_seconds()) // bucket_seconds
    if num_buckets > MAX_POINTS:
        raise ValueError(
            f"{num_buckets} buckets requested; use a longer bucket (at most {MAX_POINTS})"
        )
    qs = [p / 100.0 for p in percentiles]
    if by in (VERSION, ALL) or by in rollup_tags:
        dim_key = "" if by in (VERSION, ALL) else by
        frame = rollup_store.load_latency_rollups(
            session,
            model=model,
            start=start,
            end=end,
            dim_key=dim_key,
            model_versions=model_versions,
        )
        series = _series_labels(frame, by)
        result = summarize_rollups(frame, series, start, bucket_seconds, num_buckets, qs)
        source = "rollups"
    else:
        raw = rollup_store.load_raw_latencies(
            session, model=model, start=start, end=end, tag_key=by, model_versions=model_versions
        )
        raw = raw[raw["dim_value"].notna()]
        result = summarize_raw(
            raw, raw["dim_value"].astype(str), start, bucket_seconds, num_buckets, qs
        )
        source = "records"
    result = _name_percentiles(result, percentiles)
    return LatencySeries(start, end, bucket_seconds, by, source, result)


def _series_labels(frame: pd.DataFrame, by: str) -> pd.Series:
    if by == VERSION:
        return frame["model_version"]
    if by == ALL:
        return pd.Series(ALL, index=frame.index)
    return frame["dim_value"]


def summarize_rollups(
    frame: pd.DataFrame,
    series: pd.Series,
    origin: dt.datetime,
    bucket_seconds: int,
    num_buckets: int,
    qs: Sequence[float],
) -> pd.DataFrame:
    """Merge rollup rows into (series, bucket) groups and compute their statistics."""
    if frame.empty:
        return _empty(qs)
    bucket = _bucket_index(frame["bucket_start"], origin, bucket_seconds)
    codes, names, group = _groups(series, bucket, num_buckets)
    lengths, bins, counts = decode_many(frame["histogram"].tolist())
    num_groups = int(group.max()) + 1
    return _statistics(
        codes,
        names,
        num_buckets,
        origin,
        bucket_seconds,
        requests=np.bincount(group, weights=frame["num_requests"].to_numpy(), minlength=num_groups),
        errors=np.bincount(group, weights=frame["num_errors"].to_numpy(), minlength=num_groups),
        sums=np.bincount(group, weights=frame["latency_sum_ms"].to_numpy(), minlength=num_groups),
        quantiles=quantiles_by_group(np.repeat(group, lengths), bins, counts, num_groups, qs),
    )


def summarize_raw(
    raw: pd.DataFrame,
    series: pd.Series,
    origin: dt.datetime,
    bucket_seconds: int,
    num_buckets: int,
    qs: Sequence[float],
) -> pd.DataFrame:
    """The same statistics as `summarize_rollups`, from raw latencies."""
    if raw.empty:
        return _empty(qs)
    bucket = _bucket_index(raw["timestamp"], origin, bucket_seconds)
    codes, names, group = _groups(series, bucket, num_buckets)
    latency = raw["latency_ms"].to_numpy(dtype=np.float64)
    num_groups = int(group.max()) + 1
    return _statistics(
        codes,
        names,
        num_buckets,
        origin,
        bucket_seconds,
        requests=np.bincount(group, minlength=num_groups).astype(np.float64),
        errors=np.bincount(
            group, weights=raw["is_error"].to_numpy(dtype=np.float64), minlength=num_groups
        ),
        sums=np.bincount(group, weights=latency, minlength=num_groups),
        quantiles=quantiles_by_group(
            group, bin_indices(latency), np.ones(latency.size, np.int64), num_groups, qs
        ),
    )


def _bucket_index(
    times: pd.Series, origin: dt.datetime, bucket_seconds: int
) -> npt.NDArray[np.int64]:
    nanoseconds = pd.DatetimeIndex(pd.to_datetime(times, utc=True)).asi8
    return (nanoseconds // 1_000_000_000 - int(origin.timestamp())) // bucket_seconds


def _groups(
    series: pd.Series, bucket: npt.NDArray[np.int64], num_buckets: int
) -> tuple[npt.NDArray[np.int64], pd.Index, npt.NDArray[np.int64]]:
    """Dense group ids for the (series, bucket) pairs present; `codes` holds each group's pair."""
    series_codes, names = pd.factorize(series.to_numpy(), sort=True)
    pair = series_codes.astype(np.int64) * num_buckets + bucket
    codes, group = np.unique(pair, return_inverse=True)
    return codes, pd.Index(names), group.astype(np.int64)


def _statistics(
    codes: npt.NDArray[np.int64],
    names: pd.Index,
    num_buckets: int,
    origin: dt.datetime,
    bucket_seconds: int,
    *,
    requests: npt.NDArray[np.number[Any]],
    errors: npt.NDArray[np.number[Any]],
    sums: npt.NDArray[np.number[Any]],
    quantiles: npt.NDArray[np.float64],
) -> pd.DataFrame:
    bucket = codes % num_buckets
    frame = pd.DataFrame(
        {
            "series": names[codes // num_buckets].astype(str),
            "bucket_start": pd.to_datetime(
                origin.timestamp() + bucket * bucket_seconds, unit="s", utc=True
            ),
            "num_requests": requests.astype(np.int64),
            "num_errors": errors.astype(np.int64),
            "error_rate": errors / requests,
            "mean_ms": sums / requests,
        }
    )
    for column in range(quantiles.shape[1]):
        frame[f"q{column}"] = quantiles[:, column]
    return frame


def _empty(qs: Sequence[float]) -> pd.DataFrame:
    columns = ["series", "bucket_start", "num_requests", "num_errors", "error_rate", "mean_ms"]
    return pd.DataFrame(columns=columns + [f"q{i}" for i in range(len(qs))])


def _name_percentiles(frame: pd.DataFrame, percentiles: Sequence[float]) -> pd.DataFrame:
    return frame.rename(columns={f"q{i}": percentile_column(p) for i, p in enumerate(percentiles)})


@dataclass(frozen=True)
class VersionSummary:
    model_version: str
    num_requests: int
    num_errors: int
    error_rate: float | None
    mean_ms: float | None
    percentiles: dict[str, float | None]


def latency_summary(
    session: Session,
    *,
    model: str,
    start: dt.datetime,
    end: dt.datetime,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
) -> tuple[VersionSummary, list[VersionSummary]]:
    """Traffic, errors and percentiles over [start, end): the whole model and each version."""
    start, end = align_window(start, end, BUCKET_SECONDS)
    window = int((end - start).total_seconds())
    frame = rollup_store.load_latency_rollups(session, model=model, start=start, end=end)
    qs = [p / 100.0 for p in percentiles]
    overall = _name_percentiles(
        summarize_rollups(frame, pd.Series(ALL, index=frame.index), start, window, 1, qs),
        percentiles,
    )
    versions = _name_percentiles(
        summarize_rollups(frame, frame["model_version"], start, window, 1, qs), percentiles
    )
    total = (
        _to_summary(overall.iloc[0], ALL, percentiles)
        if len(overall)
        else _no_traffic(ALL, percentiles)
    )
    return total, [_to_summary(row, row["series"], percentiles) for _, row in versions.iterrows()]


def _to_summary(row: pd.Series, name: str, percentiles: Sequence[float]) -> VersionSummary:
    return VersionSummary(
        model_version=name,
        num_requests=int(row["num_requests"]),
        num_errors=int(row["num_errors"]),
        error_rate=float(row["error_rate"]),
        mean_ms=float(row["mean_ms"]),
        percentiles={percentile_column(p): _float(row[percentile_column(p)]) for p in percentiles},
    )


def _no_traffic(name: str, percentiles: Sequence[float]) -> VersionSummary:
    return VersionSummary(name, 0, 0, None, None, {percentile_column(p): None for p in percentiles})


def _float(value: object) -> float | None:
    number = float(value)  # type: ignore[arg-type]
    return None if np.isnan(number) else number


def _utc(epoch_seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch_seconds, tz=dt.UTC)
