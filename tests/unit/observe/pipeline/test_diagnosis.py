"""observe.pipeline.diagnosis: pure helpers."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from observe.pipeline.diagnosis import (
    Windows,
    compared_windows,
    find_episode,
    is_dependency_name,
)

T0 = dt.datetime(2026, 11, 16, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    "name",
    ["feature_store.lookup", "FeatureStore.get", "redis GET", "postgres.query", "HTTP GET", "call"],
)
def test_calls_out_of_the_model_are_dependencies(name: str) -> None:
    assert is_dependency_name(name)


@pytest.mark.parametrize("name", ["model.forward", "preprocess", "tokenize", "predict", "relu"])
def test_model_work_is_not_a_dependency(name: str) -> None:
    assert not is_dependency_name(name)


def test_the_baseline_defaults_to_the_same_length_before_and_periods_are_assigned() -> None:
    windows = Windows.resolve(T0 + dt.timedelta(seconds=30), T0 + dt.timedelta(minutes=90))

    assert (windows.start, windows.end) == (T0, T0 + dt.timedelta(minutes=90))
    assert windows.baseline_start == T0 - dt.timedelta(minutes=90)
    times = pd.Series([T0 - dt.timedelta(hours=2), T0 - dt.timedelta(minutes=1), T0, windows.end])
    periods = windows.period_of(times)
    assert list(periods[1:3]) == ["baseline", "window"]
    assert periods[[0, 3]].isna().all()


def test_a_baseline_needs_both_ends() -> None:
    with pytest.raises(ValueError, match="both"):
        Windows.resolve(T0, T0 + dt.timedelta(hours=1), baseline_start=T0 - dt.timedelta(hours=2))


def test_the_window_is_compared_from_an_onset_inside_it() -> None:
    windows = Windows.resolve(T0, T0 + dt.timedelta(hours=1))

    inside = windows.from_onset(T0 + dt.timedelta(minutes=20))
    before = windows.from_onset(T0 - dt.timedelta(minutes=5))
    at_the_end = windows.from_onset(T0 + dt.timedelta(minutes=57))

    assert (inside.start, inside.end) == (T0 + dt.timedelta(minutes=20), windows.end)
    assert (inside.baseline_start, inside.baseline_end) == (
        windows.baseline_start,
        windows.baseline_end,
    )
    assert before == windows
    assert at_the_end == windows  # too little of the window after it
    assert windows.from_onset(None) == windows


def test_a_transient_episode_is_compared_until_latency_came_back_down() -> None:
    windows = Windows.resolve(T0, T0 + dt.timedelta(hours=1))

    episode = windows.from_onset(T0 + dt.timedelta(minutes=10), T0 + dt.timedelta(minutes=30))
    recovered_before_onset_ended = windows.from_onset(None, T0 + dt.timedelta(minutes=3))

    assert (episode.start, episode.end) == (
        T0 + dt.timedelta(minutes=10),
        T0 + dt.timedelta(minutes=30),
    )
    assert recovered_before_onset_ended == windows  # 3 minutes is too short to compare


def test_the_episode_is_found_from_the_per_minute_p95() -> None:
    windows = Windows.resolve(T0, T0 + dt.timedelta(hours=1))
    rng = np.random.default_rng(0)
    p95 = 50 * rng.lognormal(0, 0.05, 120)
    p95[75:95] *= 2.5  # from 15 to 35 minutes into the window
    minutes = pd.DataFrame(
        {
            "bucket_start": [windows.baseline_start + dt.timedelta(minutes=i) for i in range(120)],
            "p95": p95,
        }
    )

    onset, recovery = find_episode(minutes, windows)

    assert onset == T0 + dt.timedelta(minutes=15)
    assert recovery == T0 + dt.timedelta(minutes=35)


def test_a_daily_ramp_is_compared_whole_and_a_step_from_its_onset() -> None:
    windows = Windows.resolve(T0, T0 + dt.timedelta(hours=6))
    rng = np.random.default_rng(1)
    starts = [windows.baseline_start + dt.timedelta(minutes=i) for i in range(720)]
    ramp = 50 * np.linspace(1.0, 1.35, 720) * rng.lognormal(0, 0.04, 720)
    step = 50 * rng.lognormal(0, 0.04, 720)
    step[400:] *= 1.6

    _, ramp_compared = compared_windows(
        pd.DataFrame({"bucket_start": starts, "p95": ramp}), windows
    )
    onset, step_compared = compared_windows(
        pd.DataFrame({"bucket_start": starts, "p95": step}), windows
    )

    assert ramp_compared == windows
    assert onset == T0 + dt.timedelta(minutes=40)
    assert step_compared.start == onset
