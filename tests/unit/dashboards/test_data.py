"""dashboards.data: the pure parts (windows, buckets, verdicts, summaries)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import pytest

from dashboards import data
from observe.schemas.findings import FindingOut
from observe.schemas.reads import ModelOut, SloOut, SloStatus

T0 = dt.datetime(2026, 11, 16, 12, 0, tzinfo=dt.UTC)


def model(**overrides: Any) -> ModelOut:
    base: dict[str, Any] = {
        "name": "fraud-scorer",
        "created_at": T0,
        "start": T0,
        "end": T0 + dt.timedelta(hours=1),
        "num_requests": 100,
        "num_errors": 2,
        "error_rate": 0.02,
        "mean_ms": 30.0,
        "p50": 25.0,
        "p95": 70.0,
        "p99": 90.0,
        "slo": SloOut(latency_percentile=95, latency_ms=60, error_rate_pct=1.0),
        "slo_status": SloStatus(
            latency_ms=70.0, latency_ok=False, error_rate_pct=2.0, error_rate_ok=False
        ),
        "versions": [],
    }
    base.update(overrides)
    return ModelOut(**base)


def finding(status: str) -> FindingOut:
    return FindingOut(
        id=1,
        kind="drift",
        model="fraud-scorer",
        window_start=T0,
        window_end=T0,
        status=status,  # type: ignore[arg-type]
        summary="amount drifted",
        dedupe_key="k",
        created_at=T0,
        updated_at=T0,
    )


def test_slo_verdict_names_each_breached_objective() -> None:
    verdict = data.slo_verdict(model())

    assert verdict == data.Verdict("breached", "breached: p95 70.0 > 60 ms; errors 2.00% > 1%")


def test_slo_verdict_meets() -> None:
    status = SloStatus(latency_ms=50.0, latency_ok=True, error_rate_pct=0.0, error_rate_ok=True)

    assert data.slo_verdict(model(slo_status=status)) == data.Verdict("ok", "meets SLO")


def test_slo_verdict_without_objectives_or_traffic() -> None:
    no_status = SloStatus(latency_ms=None, latency_ok=None, error_rate_pct=None, error_rate_ok=None)

    assert data.slo_verdict(model(slo=SloOut())).text == "no SLO"
    assert data.slo_verdict(model(num_requests=0, slo_status=no_status)).text == "no traffic"


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (None, data.Verdict("none", "not analysed")),
        ("open", data.Verdict("breached", "drifting")),
        ("resolved", data.Verdict("warn", "drift resolved")),
        ("ok", data.Verdict("ok", "no drift")),
    ],
)
def test_drift_verdict(status: str | None, verdict: data.Verdict) -> None:
    assert data.drift_verdict(None if status is None else finding(status)) == verdict


def test_describe_slo() -> None:
    assert data.describe_slo(model().slo) == "p95 ≤ 60 ms, errors ≤ 1%"
    assert data.describe_slo(SloOut()) == "-"


@pytest.mark.parametrize(
    ("hours", "bucket"),
    [(1, 60), (10, 60), (24, 300), (7 * 24, 1800), (30 * 24, 3 * 3600), (400 * 24, 86_400)],
)
def test_auto_bucket_keeps_charts_under_the_point_budget(hours: float, bucket: int) -> None:
    window = data.Window(T0, T0 + dt.timedelta(hours=hours))

    assert data.auto_bucket_seconds(window) == bucket
    assert window.seconds / bucket <= data.MAX_CHART_POINTS


def test_resolve_window_accepts_what_the_api_accepts() -> None:
    window = data.resolve_window("2026-11-16T12:00:00Z", "2026-11-16T18:00:00Z")

    assert (window.start, window.end) == (T0, T0 + dt.timedelta(hours=6))
    relative = data.resolve_window("-7d", None)
    assert relative.seconds == pytest.approx(7 * 86_400, abs=1)
    default = data.resolve_window(None, "")
    assert default.seconds == pytest.approx(86_400, abs=1)


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("yesterday", None, "start:"),
        ("-7d", "2020-01-01T00:00:00Z", "start must be before end"),
        ("-5x", None, "start:"),
    ],
)
def test_resolve_window_refuses_with_a_message(start: str, end: str | None, message: str) -> None:
    with pytest.raises(data.InputError, match=message):
        data.resolve_window(start, end)


@pytest.mark.parametrize(("value", "percentile"), [(None, 95.0), ("99", 99.0), ("p99.9", 99.9)])
def test_parse_percentile(value: str | None, percentile: float) -> None:
    assert data.parse_percentile(value) == percentile


@pytest.mark.parametrize("value", ["abc", "0", "100", "-5"])
def test_parse_percentile_refuses(value: str) -> None:
    with pytest.raises(data.InputError, match="percentile"):
        data.parse_percentile(value)


def test_group_choices_are_versions_all_and_rolled_up_tags() -> None:
    assert data.group_choices(("host", "region")) == ["model_version", "all", "host", "region"]


def test_summarize_resources_weights_means_by_samples_and_keeps_extremes() -> None:
    rows = [
        # host, resource, name, mean, max, min, samples
        ("gpu-1", "gpu0", "gpu_utilization_pct", 90.0, 95.0, 80.0, 1),
        ("gpu-1", "gpu0", "gpu_utilization_pct", 30.0, 40.0, 20.0, 3),
        ("gpu-1", "gpu0", "gpu_temperature_c", 70.0, 88.0, 60.0, 4),
        ("gpu-1", "gpu0", "gpu_sm_clock_mhz", 1900.0, 1980.0, 1100.0, 4),
        ("gpu-2", "gpu0", "gpu_utilization_pct", 50.0, 55.0, 45.0, 2),
    ]
    frame = pd.DataFrame(
        rows, columns=["host", "resource", "name", "mean", "max", "min", "num_samples"]
    )
    view = data.InfraView(data.Window(T0, T0), 60, [], ["gpu-1", "gpu-2"], frame)

    summary = data.summarize_resources(view).set_index(["host", "resource"])

    assert summary.loc[("gpu-1", "gpu0"), "mean_utilization_pct"] == pytest.approx(45.0)
    assert summary.loc[("gpu-1", "gpu0"), "max_temperature_c"] == 88.0
    assert summary.loc[("gpu-1", "gpu0"), "min_sm_clock_mhz"] == 1100.0
    assert summary.loc[("gpu-2", "gpu0"), "mean_utilization_pct"] == pytest.approx(50.0)
    assert pd.isna(summary.loc[("gpu-2", "gpu0"), "max_temperature_c"])


@pytest.mark.parametrize(
    ("details", "onset"),
    [
        ({"onset_at": "2026-11-16T14:30:00+00:00"}, T0 + dt.timedelta(hours=2, minutes=30)),
        ({"onset_at": "2026-11-16T14:30:00"}, T0 + dt.timedelta(hours=2, minutes=30)),
        ({"onset_at": "not a time"}, T0),
        ({}, T0),
        (None, T0),
    ],
)
def test_a_regression_is_drawn_at_its_onset(details: Any, onset: dt.datetime) -> None:
    regression = finding("open").model_copy(update={"details": details})

    assert data.onset_of(regression) == onset
