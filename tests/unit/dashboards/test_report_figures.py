"""dashboards.figures for the weekly reports: week over week, GPU headroom, drift strength and
per-model changes, checked on hand-made data without a browser."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from dashboards import figures

WEEK_START = dt.datetime(2026, 11, 16, tzinfo=dt.UTC)
PREVIOUS_START = WEEK_START - dt.timedelta(days=7)


def hourly(start: dt.datetime, values: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "bucket_start": [start + dt.timedelta(hours=i) for i in range(len(values))],
            "p95": values,
        }
    )


def test_the_week_before_is_laid_over_this_week() -> None:
    figure = figures.week_over_week_figure(
        hourly(WEEK_START, [50.0, 90.0]),
        hourly(PREVIOUS_START, [40.0, 41.0]),
        column="p95",
        label="p95 latency",
        week_start=WEEK_START,
        bound=60.0,
    )

    lines = {trace.name: trace for trace in figure.data}
    assert list(lines) == ["week before", "this week", "objective 60 ms"]
    assert list(lines["this week"].y) == [50.0, 90.0]
    assert list(lines["week before"].y) == [40.0, 41.0]
    # Shifted by a week: last Monday's hours sit on this Monday's.
    assert list(pd.to_datetime(lines["week before"].x)) == list(
        pd.to_datetime(lines["this week"].x)
    )
    assert list(lines["objective 60 ms"].y) == [60.0, 60.0]
    assert list(pd.to_datetime(figure.layout.xaxis.range)) == [
        pd.Timestamp(WEEK_START),
        pd.Timestamp(WEEK_START + dt.timedelta(days=7)),
    ]


def test_week_over_week_with_only_one_week_of_data_draws_that_week() -> None:
    empty = hourly(PREVIOUS_START, [])

    figure = figures.week_over_week_figure(
        hourly(WEEK_START, [50.0]), empty, column="p95", label="p95", week_start=WEEK_START
    )
    nothing = figures.week_over_week_figure(
        empty, empty, column="p95", label="p95", week_start=WEEK_START
    )

    assert [trace.name for trace in figure.data] == ["this week"]
    assert nothing.layout.annotations[0].text == "No traffic in either week"


def devices() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "host": ["gpu-1", "gpu-2", "gpu-3"],
            "resource": ["gpu0", "gpu0", "gpu1"],
            "mean_utilization_pct": [50.0, 97.0, None],
            "max_memory_used_mb": [8_000.0, 15_500.0, 1_000.0],
            "memory_total_mb": [16_000.0, 16_000.0, None],
        }
    )


def test_gpu_headroom_shows_utilization_and_peak_memory_share_per_device() -> None:
    figure = figures.gpu_headroom_figure(devices())

    utilization, memory = figure.data
    assert list(utilization.y) == ["gpu-1/gpu0", "gpu-2/gpu0", "gpu-3/gpu1"]
    assert list(utilization.x)[:2] == [50.0, 97.0]
    assert list(memory.x)[:2] == pytest.approx([50.0, 96.88])
    assert pd.isna(list(memory.x)[2])  # no memory total: no share
    assert list(memory.marker.color) == [figures.OK_COLOUR, figures.SLO_COLOUR, figures.OK_COLOUR]
    assert [shape.x0 for shape in figure.layout.shapes] == [90.0]


def test_gpu_headroom_without_devices_says_so() -> None:
    figure = figures.gpu_headroom_figure(devices().iloc[0:0])

    assert figure.layout.annotations[0].text == "No GPU metrics in this window"


def test_drift_strength_marks_drifted_features_against_the_threshold() -> None:
    features = pd.DataFrame(
        {
            "feature": ["amount", "country"],
            "test": ["wasserstein", "jensenshannon"],
            "strength": [3.5, 0.2],
            "drifted": [True, False],
        }
    )

    figure = figures.drift_strength_figure(features, title="fraud-scorer v1")

    [bars] = figure.data
    assert list(bars.y) == ["amount", "country"]
    assert list(bars.x) == [3.5, 0.2]
    assert list(bars.marker.color) == [figures.SLO_COLOUR, figures.OK_COLOUR]
    assert [shape.x0 for shape in figure.layout.shapes] == [1]
    assert figure.layout.xaxis.type != "log"
    strong = figures.drift_strength_figure(
        features.assign(strength=[1000.0, 0.5]), title="capped p-value"
    )
    assert strong.layout.xaxis.type == "log"


def test_changes_are_drawn_in_percent_per_model() -> None:
    changes = pd.DataFrame(
        {
            "model": ["fraud-scorer", "ranker"],
            "requests": [0.1, -0.5],
            "error_rate": [1.5, None],
            "p95": [0.9, -0.02],
        }
    )

    figure = figures.week_over_week_changes_figure(changes)

    by_name = {trace.name: trace for trace in figure.data}
    assert list(by_name) == ["requests", "error rate", "p95 latency"]
    assert list(by_name["requests"].x) == [10.0, -50.0]
    assert list(by_name["p95 latency"].x) == [90.0, -2.0]
    assert pd.isna(list(by_name["error rate"].x)[1])
    assert figures.week_over_week_changes_figure(changes.iloc[0:0]).layout.annotations
