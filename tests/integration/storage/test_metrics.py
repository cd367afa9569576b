"""observe.storage.metrics: metric samples averaged per time bucket by the database."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import pytest

from observe.db.engine import Database
from observe.storage import metrics as metric_store
from observe.storage import signals as signal_store
from tests.factories import T0, metric_in

HOUR = T0 + dt.timedelta(hours=1)


def at(seconds: float) -> str:
    return (T0 + dt.timedelta(seconds=seconds)).isoformat()


def store(db: Database, samples: list[Any]) -> None:
    with db.write_sessions.begin() as session:
        signal_store.insert_metric_samples(session, samples)


def series(db: Database, **options: Any) -> pd.DataFrame:
    with db.sessions() as session:
        return metric_store.load_metric_series(session, **options)


def test_samples_are_averaged_per_bucket_with_peak_and_trough(db: Database) -> None:
    store(
        db,
        [
            metric_in(timestamp=at(0), value=10.0),
            metric_in(timestamp=at(100), value=30.0),
            metric_in(timestamp=at(299.5), value=50.0),
            metric_in(timestamp=at(300), value=80.0),  # the next 5-minute bucket
            metric_in(timestamp=at(610), host="gpu-2", value=5.0),
            metric_in(timestamp=at(10), name="gpu_temperature_c", value=70.0),
        ],
    )

    frame = series(db, start=T0, end=HOUR, bucket_seconds=300)

    assert list(frame.columns) == list(metric_store.SERIES_COLUMNS)
    rows = [
        (r.host, r.name, r.bucket_start, r.mean, r.max, r.min, r.num_samples)
        for r in frame.itertuples()
    ]
    assert rows == [
        ("gpu-1", "gpu_temperature_c", pd.Timestamp(T0), 70.0, 70.0, 70.0, 1),
        ("gpu-1", "gpu_utilization_pct", pd.Timestamp(T0), 30.0, 50.0, 10.0, 3),
        ("gpu-1", "gpu_utilization_pct", pd.Timestamp(at(300)), 80.0, 80.0, 80.0, 1),
        ("gpu-2", "gpu_utilization_pct", pd.Timestamp(at(600)), 5.0, 5.0, 5.0, 1),
    ]
    assert str(frame["bucket_start"].dt.tz) == "UTC"


def test_buckets_start_on_multiples_of_their_length(db: Database) -> None:
    store(db, [metric_in(timestamp=at(-30 * 60 + 125), value=1.0)])  # 11:32:05

    frame = series(db, start=T0 - dt.timedelta(hours=1), end=HOUR, bucket_seconds=3600)

    assert list(frame["bucket_start"]) == [pd.Timestamp(T0 - dt.timedelta(hours=1))]


def test_window_is_half_open_and_filters_apply(db: Database) -> None:
    store(
        db,
        [
            metric_in(timestamp=at(-1), value=1.0),
            metric_in(timestamp=at(0), value=2.0),
            metric_in(timestamp=at(3599), value=3.0),
            metric_in(timestamp=at(3600), value=4.0),
            metric_in(timestamp=at(5), host="gpu-2", value=9.0),
            metric_in(timestamp=at(5), name="gpu_power_w", value=300.0),
        ],
    )

    frame = series(
        db,
        start=T0,
        end=HOUR,
        bucket_seconds=3600,
        names=["gpu_utilization_pct"],
        hosts=["gpu-1"],
    )

    assert list(frame["mean"]) == [2.5]
    assert list(frame["num_samples"]) == [2]


def test_no_samples_give_an_empty_frame_with_the_columns(db: Database) -> None:
    frame = series(db, start=T0, end=HOUR, bucket_seconds=60)

    assert frame.empty
    assert list(frame.columns) == list(metric_store.SERIES_COLUMNS)


def test_bucket_must_be_positive(db: Database) -> None:
    with db.sessions() as session, pytest.raises(ValueError, match="bucket_seconds"):
        metric_store.load_metric_series(session, start=T0, end=HOUR, bucket_seconds=0)


def test_hosts_with_samples_in_the_window(db: Database) -> None:
    store(
        db,
        [
            metric_in(timestamp=at(0), host="gpu-2"),
            metric_in(timestamp=at(1), host="gpu-1"),
            metric_in(timestamp=at(2), host="gpu-1", resource="gpu1"),
            metric_in(timestamp=at(7200), host="gpu-9"),
            metric_in(timestamp=at(3), host="queue-host", name="queue_length"),
        ],
    )

    with db.sessions() as session:
        every = metric_store.list_metric_hosts(session, start=T0, end=HOUR)
        gpus = metric_store.list_metric_hosts(
            session, start=T0, end=HOUR, names=["gpu_utilization_pct"]
        )

    assert every == ["gpu-1", "gpu-2", "queue-host"]
    assert gpus == ["gpu-1", "gpu-2"]
