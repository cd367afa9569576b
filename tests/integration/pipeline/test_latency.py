"""observe.pipeline.latency: percentile series and summaries read from rollups (or raw records
for tags without rollups) agree with the raw data."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest

from analyzers.histograms import RELATIVE_ACCURACY
from observe.db.engine import Database
from observe.pipeline import ingest, latency
from observe.schemas.records import InferenceRecordIn
from tests.factories import T0, record

ROLLUP_TAGS = ("host",)
NOW = T0 + dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)


def make_records(count: int, *, seed: int, prefix: str, **fixed: Any) -> list[InferenceRecordIn]:
    """Records over 30 minutes from T0, in random order of time, with a heavy tail."""
    rng = np.random.default_rng(seed)
    offsets = rng.uniform(0, 1800, count)
    latency_ms = np.round(rng.lognormal(3.0, 0.6, count) + rng.choice([0, 0, 0, 0, 300], count), 3)
    items = []
    for i in range(count):
        values = {
            "request_id": f"{prefix}-{i}",
            "timestamp": (T0 + dt.timedelta(seconds=float(offsets[i]))).isoformat(),
            "latency_ms": float(latency_ms[i]),
            "model_version": str(rng.choice(["v1", "v2", "v3"])),
            "status": "error" if rng.random() < 0.05 else "ok",
            "tags": {"host": str(rng.choice(["gpu-1", "gpu-2"])), "segment": "web"},
        }
        items.append(InferenceRecordIn.model_validate(record(**(values | fixed))))
    return items


@functools.cache
def batches_of_records() -> list[list[InferenceRecordIn]]:
    return [make_records(400, seed=seed, prefix=f"b{seed}") for seed in range(3)]


@pytest.fixture
def stored(db: Database) -> pd.DataFrame:
    """Three batches of 400 records stored with rollups; the raw data as a DataFrame."""
    batches = batches_of_records()
    for batch in batches:
        with db.write_sessions.begin() as session:
            ingest.store_records(session, batch, rollup_tags=ROLLUP_TAGS, now=NOW)
    items = [r for batch in batches for r in batch]
    return pd.DataFrame(
        {
            "timestamp": pd.to_datetime([r.timestamp for r in items], utc=True),
            "model_version": [r.model_version for r in items],
            "host": [(r.tags or {})["host"] for r in items],
            "latency_ms": [r.latency_ms for r in items],
            "is_error": [r.status == "error" for r in items],
        }
    )


def series(db: Database, **options: Any) -> latency.LatencySeries:
    arguments: dict[str, Any] = {
        "model": "fraud-scorer",
        "start": T0,
        "end": T0 + HOUR,
        "rollup_tags": ROLLUP_TAGS,
    }
    with db.sessions() as session:
        return latency.latency_series(session, **(arguments | options))


def exact(values: Sequence[float], percentile: float) -> float:
    """The quantile as analyzers.histograms defines it: rank floor(q (n - 1)), numpy "lower"."""
    return float(np.percentile(np.asarray(values), percentile, method="lower"))


def assert_close(estimate: float, truth: float) -> None:
    assert abs(estimate - truth) <= RELATIVE_ACCURACY * truth + 1e-9, (estimate, truth)


def test_percentiles_from_merged_rollups_agree_with_numpy(
    db: Database, stored: pd.DataFrame
) -> None:
    result = series(db, by="all", bucket_seconds=3600, percentiles=(50, 90, 95, 99, 99.9))

    assert result.source == "rollups"
    assert len(result.frame) == 1
    row = result.frame.iloc[0]
    assert row["series"] == "all"
    assert row["num_requests"] == len(stored) == 1200
    assert row["num_errors"] == int(stored["is_error"].sum())
    assert row["mean_ms"] == pytest.approx(stored["latency_ms"].mean(), rel=1e-12)
    for percentile, column in [(50, "p50"), (90, "p90"), (95, "p95"), (99, "p99"), (99.9, "p99_9")]:
        assert_close(row[column], exact(stored["latency_ms"], percentile))


def test_per_minute_series_by_version_agree_with_the_raw_data(
    db: Database, stored: pd.DataFrame
) -> None:
    result = series(db, by="model_version")

    frame = result.frame.set_index(["series", "bucket_start"])
    minute = stored["timestamp"].dt.floor("60s")
    groups = stored.groupby([stored["model_version"], minute])
    assert len(frame) == groups.ngroups == 90
    for (version, bucket), group in groups:
        row = frame.loc[(version, bucket)]
        assert row["num_requests"] == len(group)
        assert row["num_errors"] == int(group["is_error"].sum())
        assert row["error_rate"] == pytest.approx(group["is_error"].mean())
        assert row["mean_ms"] == pytest.approx(group["latency_ms"].mean(), rel=1e-12)
        for percentile in (50, 95, 99):
            assert_close(row[f"p{percentile}"], exact(group["latency_ms"], percentile))


def comparable(result: latency.LatencySeries) -> pd.DataFrame:
    return result.frame.sort_values(["series", "bucket_start"]).reset_index(drop=True)


def test_a_rolled_up_tag_and_a_tag_read_from_records_give_the_same_numbers(
    db: Database, stored: pd.DataFrame
) -> None:
    from_rollups = series(db, by="host", bucket_seconds=600)
    from_records = series(db, by="host", bucket_seconds=600, rollup_tags=())

    assert (from_rollups.source, from_records.source) == ("rollups", "records")
    pd.testing.assert_frame_equal(comparable(from_rollups), comparable(from_records))
    totals = comparable(from_rollups).groupby("series")["num_requests"].sum()
    assert totals.to_dict() == stored["host"].value_counts().to_dict()


def test_a_tag_without_rollups_that_some_records_lack(db: Database, stored: pd.DataFrame) -> None:
    result = series(db, by="segment", bucket_seconds=3600)
    everything = series(db, by="all", bucket_seconds=3600)

    assert result.source == "records"
    assert result.frame["series"].tolist() == ["web"]
    columns = ["num_requests", "num_errors", "p50", "p95", "p99"]
    assert result.frame[columns].to_dict("records") == everything.frame[columns].to_dict("records")
    assert series(db, by="no-such-tag").frame.empty


def test_all_versions_merged_equals_the_versions_added_up(
    db: Database, stored: pd.DataFrame
) -> None:
    merged = series(db, by="all", bucket_seconds=900)
    by_version = series(db, by="model_version", bucket_seconds=900)

    added = by_version.frame.groupby("bucket_start")[["num_requests", "num_errors"]].sum()
    assert merged.frame.set_index("bucket_start")[["num_requests", "num_errors"]].equals(added)
    only_v2 = series(db, by="all", bucket_seconds=900, model_versions=["v2"])
    assert only_v2.frame["num_requests"].sum() == (stored["model_version"] == "v2").sum()
    assert only_v2.frame["p95"].tolist() == (
        by_version.frame[by_version.frame["series"] == "v2"]["p95"].tolist()
    )


def test_the_window_is_widened_to_whole_output_buckets(db: Database, stored: pd.DataFrame) -> None:
    start = T0 + dt.timedelta(minutes=3, seconds=30)
    result = series(
        db, by="all", start=start, end=T0 + dt.timedelta(minutes=28, seconds=10), bucket_seconds=900
    )

    assert (result.start, result.end) == (T0, T0 + dt.timedelta(minutes=30))
    assert result.bucket_seconds == 900
    starts = [ts.to_pydatetime() for ts in result.frame["bucket_start"]]
    assert starts == [T0, T0 + dt.timedelta(minutes=15)]
    assert all(int(ts.timestamp()) % 900 == 0 for ts in starts)
    assert result.frame["num_requests"].sum() == len(stored)  # 12:00-12:03:30 included


def test_window_edges_already_on_bucket_boundaries_stay(db: Database, stored: pd.DataFrame) -> None:
    result = series(
        db, by="all", start=T0 + dt.timedelta(minutes=10), end=T0 + dt.timedelta(minutes=20)
    )
    inside = stored[
        (stored["timestamp"] >= T0 + dt.timedelta(minutes=10))
        & (stored["timestamp"] < T0 + dt.timedelta(minutes=20))
    ]

    assert (result.start, result.end) == (
        T0 + dt.timedelta(minutes=10),
        T0 + dt.timedelta(minutes=20),
    )
    assert len(result.frame) == 10
    assert result.frame["num_requests"].sum() == len(inside)


def test_an_empty_window_is_one_bucket_long() -> None:
    start, end = latency.align_window(
        T0 + dt.timedelta(seconds=30), T0 + dt.timedelta(seconds=30), 60
    )

    assert (start, end) == (T0, T0 + dt.timedelta(minutes=1))


def test_a_bucket_that_is_not_a_multiple_of_a_minute_is_refused(db: Database) -> None:
    for bucket_seconds in (0, -60, 30, 90, 61):
        with pytest.raises(ValueError, match="multiple of 60"):
            series(db, bucket_seconds=bucket_seconds)


def test_too_many_buckets_are_refused(db: Database) -> None:
    end = T0 + dt.timedelta(minutes=latency.MAX_POINTS + 1)

    with pytest.raises(ValueError, match="use a longer bucket"):
        series(db, end=end)
    assert series(db, end=end, bucket_seconds=120).frame.empty


def test_a_model_without_data_has_empty_series_and_no_traffic(db: Database) -> None:
    result = series(db, model="nothing")
    with db.sessions() as session:
        total, versions = latency.latency_summary(session, model="nothing", start=T0, end=T0 + HOUR)

    assert result.frame.empty
    assert {"series", "bucket_start", "p50", "p95", "p99"} <= set(result.frame.columns)
    assert (total.num_requests, total.error_rate, total.mean_ms) == (0, None, None)
    assert total.percentiles == {"p50": None, "p95": None, "p99": None}
    assert versions == []


def test_latency_summary_matches_the_raw_data(db: Database, stored: pd.DataFrame) -> None:
    start, end = T0 + dt.timedelta(minutes=5), T0 + dt.timedelta(minutes=25)
    with db.sessions() as session:
        total, versions = latency.latency_summary(
            session, model="fraud-scorer", start=start, end=end, percentiles=(50, 95, 99, 99.5)
        )
    window = stored[(stored["timestamp"] >= start) & (stored["timestamp"] < end)]

    def check(summary: latency.VersionSummary, raw: pd.DataFrame) -> None:
        assert summary.num_requests == len(raw)
        assert summary.num_errors == int(raw["is_error"].sum())
        assert summary.error_rate == pytest.approx(raw["is_error"].mean())
        assert summary.mean_ms == pytest.approx(raw["latency_ms"].mean(), rel=1e-12)
        assert set(summary.percentiles) == {"p50", "p95", "p99", "p99_5"}
        for percentile, column in [(50, "p50"), (95, "p95"), (99, "p99"), (99.5, "p99_5")]:
            value = summary.percentiles[column]
            assert value is not None
            assert_close(value, exact(raw["latency_ms"], percentile))

    assert total.model_version == "all"
    check(total, window)
    assert [v.model_version for v in versions] == ["v1", "v2", "v3"]
    for summary in versions:
        check(summary, window[window["model_version"] == summary.model_version])
