"""dashboards.data.drift: the pure parts (heatmap buckets and cells, the feature to plot)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from analyzers.drift import DriftResult, detect_drift
from dashboards.data import InputError, Window
from dashboards.data import drift as drift_data
from observe.pipeline.drift import TimelineBucket

T0 = dt.datetime(2026, 11, 16, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("hours", "bucket_seconds"),
    [
        (1, 3600),
        (24, 3600),
        (60, 3600),
        (7 * 24, 3 * 3600),
        (14 * 24, 6 * 3600),
        (30 * 24, 86_400),
        (900 * 24, 604_800),
    ],
)
def test_the_heatmap_bucket_keeps_it_narrow(hours: int, bucket_seconds: int) -> None:
    window = Window(T0, T0 + dt.timedelta(hours=hours))

    assert drift_data.timeline_bucket_seconds(window) == bucket_seconds


def result() -> DriftResult:
    reference = pd.DataFrame({"amount": [1.0, 2.0, 3.0] * 50, "country": ["DE", "FR"] * 75})
    current = pd.DataFrame({"amount": [7.0, 8.0, 9.0] * 50, "country": ["DE", "FR"] * 75})
    return detect_drift(reference, current)


def test_the_plotted_feature_is_the_one_asked_for_else_the_first_drifted() -> None:
    drift = result()

    assert drift_data.pick_feature(drift, "country").feature == "country"  # type: ignore[union-attr]
    assert drift_data.pick_feature(drift, None).feature == "amount"  # type: ignore[union-attr]
    with pytest.raises(InputError, match="feature: 'price' is not a feature of this model"):
        drift_data.pick_feature(drift, "price")


def test_the_feature_table_lists_drifted_features_first() -> None:
    table = drift_data.feature_table(result())

    assert list(table["feature"]) == ["amount", "country"]
    assert list(table["drifted"]) == [True, False]
    assert list(table.columns) == list(drift_data.FEATURE_COLUMNS)


def test_timeline_cells_skip_buckets_without_records() -> None:
    buckets = [
        TimelineBucket(T0, 150, result()),
        TimelineBucket(T0 + dt.timedelta(hours=1), 0, None),
    ]

    cells = drift_data.timeline_cells(buckets)

    assert [(c.feature, c.start, c.drifted) for c in cells] == [
        ("amount", T0, True),
        ("country", T0, False),
    ]
    assert cells[0].test == "ks"


def test_a_baseline_from_the_url() -> None:
    baseline = drift_data.resolve_baseline("2026-11-16T12:00:00Z", "1763298000", "")

    assert baseline == drift_data.Baseline(T0, dt.datetime(2025, 11, 16, 13, 0, tzinfo=dt.UTC))
    with pytest.raises(InputError, match="baseline_start: "):
        drift_data.resolve_baseline("last week", None, None)
