"""dashboards.figures: pure figure builders, checked on hand-made data without a browser."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import pytest

from dashboards import figures
from dashboards.data import (
    INFRA_CHARTS,
    ChangePoint,
    EventMarker,
    LatencyView,
    ModelRow,
    Verdict,
    Window,
)
from observe.schemas.reads import ModelOut, SloOut, SloStatus
from observe.storage.models import Slo

T0 = dt.datetime(2026, 11, 16, 12, 0, tzinfo=dt.UTC)
WINDOW = Window(T0, T0 + dt.timedelta(hours=1))
SLO_95 = Slo(latency_percentile=95.0, latency_ms=60.0, error_rate_pct=1.0, updated_at=None)


def series_frame(rows: list[tuple[str, int, int, int, float]]) -> pd.DataFrame:
    """(series, minute, requests, errors, p95) rows as the latency pipeline returns them."""
    return pd.DataFrame(
        {
            "series": [r[0] for r in rows],
            "bucket_start": [T0 + dt.timedelta(minutes=r[1]) for r in rows],
            "num_requests": [r[2] for r in rows],
            "num_errors": [r[3] for r in rows],
            "error_rate": [r[3] / r[2] for r in rows],
            "mean_ms": [r[4] * 0.7 for r in rows],
            "p50": [r[4] * 0.5 for r in rows],
            "p95": [r[4] for r in rows],
        }
    )


def latency_view(**overrides: Any) -> LatencyView:
    base: dict[str, Any] = {
        "model": "fraud-scorer",
        "window": WINDOW,
        "bucket_seconds": 60,
        "by": "model_version",
        "percentile": 95.0,
        "source": "rollups",
        "frame": series_frame(
            [
                ("v1", 0, 100, 0, 40.0),
                ("v1", 1, 120, 6, 42.0),
                ("v2", 1, 30, 0, 90.0),
                ("v2", 2, 150, 3, 95.0),
            ]
        ),
        "events": [],
        "change_points": [],
        "slo": SLO_95,
    }
    base.update(overrides)
    return LatencyView(**base)


def traces(figure: Any, kind: str | None = None) -> dict[str, Any]:
    return {t.name: t for t in figure.data if kind is None or t.type == kind}


# --- latency -----------------------------------------------------------------------------------


def test_latency_figure_draws_the_percentile_of_each_series() -> None:
    figure = figures.latency_figure(latency_view())

    lines = traces(figure)
    assert list(lines["v1"].y) == [40.0, 42.0]
    assert list(lines["v2"].y) == [90.0, 95.0]
    assert list(pd.to_datetime(lines["v2"].x, utc=True)) == [
        T0 + dt.timedelta(minutes=1),
        T0 + dt.timedelta(minutes=2),
    ]
    assert "p95 latency per version" in figure.layout.title.text


def test_latency_figure_draws_the_slo_bound_of_the_same_percentile() -> None:
    figure = figures.latency_figure(latency_view())

    [slo] = [t for t in figure.data if t.name.startswith("SLO")]
    assert list(slo.y) == [60.0, 60.0]
    assert slo.name == "SLO p95 ≤ 60 ms"


def test_latency_figure_leaves_out_an_slo_about_another_percentile() -> None:
    frame = series_frame([("v1", 0, 10, 0, 40.0)]).rename(columns={"p95": "p99"})

    figure = figures.latency_figure(latency_view(percentile=99.0, frame=frame))

    assert not [t for t in figure.data if t.name.startswith("SLO")]


def test_events_are_vertical_lines_with_hover_labels() -> None:
    deploy_at = T0 + dt.timedelta(minutes=1, seconds=30)
    rollback_at = T0 + dt.timedelta(minutes=40)
    events = [
        EventMarker(deploy_at, "deploy", "v2", "roll out v2"),
        EventMarker(rollback_at, "rollback", "v1", None),
    ]

    figure = figures.latency_figure(latency_view(events=events))

    lines = [s for s in figure.layout.shapes if s.line.dash == "dot"]
    assert sorted(s.x0 for s in lines) == [deploy_at, rollback_at]
    assert all(s.yref == "paper" and (s.y0, s.y1) == (0, 1) for s in lines)
    markers = traces(figure)
    assert list(markers["deploy events"].text) == ["deploy v2: roll out v2"]
    assert list(markers["rollback events"].text) == ["rollback v1"]
    assert markers["deploy events"].marker.color == figures.EVENT_COLOURS["deploy"]


def test_change_points_are_marked_where_the_regression_starts() -> None:
    at = T0 + dt.timedelta(minutes=2)
    points = [ChangePoint(at, "v2", "open", "p95 rose from 40 to 95 ms", 7)]

    figure = figures.latency_figure(latency_view(change_points=points))

    [marker] = [t for t in figure.data if t.name == "change points"]
    assert list(marker.x) == [at]
    assert list(marker.text) == ["p95 rose from 40 to 95 ms (open)"]
    solid = [s for s in figure.layout.shapes if s.line.color == figures.CHANGE_POINT_COLOUR]
    assert [s.x0 for s in solid] == [at]


def test_markers_sit_above_the_highest_point() -> None:
    events = [EventMarker(T0, "deploy", "v2", None)]

    figure = figures.latency_figure(latency_view(events=events))

    assert traces(figure)["deploy events"].y[0] == pytest.approx(95.0 * 1.05)


def test_a_window_without_traffic_says_so() -> None:
    empty = series_frame([]).iloc[0:0]

    figure = figures.latency_figure(latency_view(frame=empty))

    assert figure.data == ()
    assert figure.layout.annotations[0].text == "No traffic in this window"


def test_traffic_figure_stacks_requests_and_plots_the_overall_error_rate() -> None:
    figure = figures.traffic_figure(latency_view())

    bars = traces(figure, "bar")
    assert list(bars["v1"].y) == [100, 120]
    assert list(bars["v2"].y) == [30, 150]
    assert figure.layout.barmode == "stack"
    errors = traces(figure)["error rate"]
    # minute 1: (6 + 0) errors of (120 + 30) requests
    assert list(errors.y) == pytest.approx([0.0, 100 * 6 / 150, 100 * 3 / 150])
    assert errors.yaxis == "y2"


# --- overview ----------------------------------------------------------------------------------


def model_row(name: str, *, p95: float | None, slo_ms: float | None) -> ModelRow:
    model = ModelOut(
        name=name,
        created_at=T0,
        start=T0,
        end=T0 + dt.timedelta(hours=1),
        num_requests=0 if p95 is None else 100,
        num_errors=0,
        error_rate=None if p95 is None else 0.0,
        mean_ms=p95,
        p50=p95,
        p95=p95,
        p99=p95,
        slo=SloOut(latency_percentile=95 if slo_ms else None, latency_ms=slo_ms),
        slo_status=SloStatus(
            latency_ms=p95,
            latency_ok=None if p95 is None or slo_ms is None else p95 <= slo_ms,
            error_rate_pct=None,
            error_rate_ok=None,
        ),
        versions=[],
    )
    return ModelRow(model, Verdict("ok", ""), Verdict("none", ""), 0)


def test_slo_figure_shows_latency_as_a_share_of_each_objective() -> None:
    rows = [
        model_row("fraud-scorer", p95=75.0, slo_ms=60.0),
        model_row("ranker", p95=100.0, slo_ms=250.0),
        model_row("no-slo", p95=10.0, slo_ms=None),
        model_row("idle", p95=None, slo_ms=60.0),
    ]

    figure = figures.slo_figure(rows)

    [bars] = figure.data
    assert list(bars.y) == ["fraud-scorer", "ranker"]
    assert list(bars.x) == pytest.approx([125.0, 40.0])
    assert list(bars.marker.color) == [figures.SLO_COLOUR, figures.PALETTE[2]]
    assert bars.text[0] == "p95 75.0 ms of 60 ms"
    assert [s.x0 for s in figure.layout.shapes] == [100]


def test_slo_figure_without_measurable_models_says_so() -> None:
    figure = figures.slo_figure([model_row("no-slo", p95=10.0, slo_ms=None)])

    assert figure.data == ()
    assert "No model has both" in figure.layout.annotations[0].text


# --- infra -------------------------------------------------------------------------------------


def metric_frame() -> pd.DataFrame:
    rows = [
        ("gpu-1", "gpu0", 0, 50.0, 60.0),
        ("gpu-1", "gpu0", 5, 55.0, 70.0),
        ("gpu-2", "gpu0", 0, 90.0, 99.0),
        ("gpu-2", "gpu1", 5, 10.0, 12.0),
    ]
    return pd.DataFrame(
        {
            "bucket_start": [T0 + dt.timedelta(minutes=r[2]) for r in rows],
            "host": [r[0] for r in rows],
            "resource": [r[1] for r in rows],
            "name": "gpu_utilization_pct",
            "mean": [r[3] for r in rows],
            "max": [r[4] for r in rows],
            "min": [r[3] for r in rows],
            "num_samples": 5,
        }
    )


def test_metric_figure_draws_a_line_per_host_and_device() -> None:
    chart = INFRA_CHARTS[0]

    figure = figures.metric_figure(
        metric_frame(), chart, window_start=WINDOW.start, window_end=WINDOW.end
    )

    lines = traces(figure)
    assert sorted(lines) == ["gpu-1/gpu0", "gpu-2/gpu0", "gpu-2/gpu1"]
    assert list(lines["gpu-1/gpu0"].y) == [50.0, 55.0]
    assert [row[0] for row in lines["gpu-1/gpu0"].customdata] == [60.0, 70.0]
    assert list(figure.layout.yaxis.range) == [0, 102.0]
    assert figure.layout.title.text == "GPU utilization (%)"


def test_metric_figure_without_samples_names_the_metric() -> None:
    chart = INFRA_CHARTS[2]

    figure = figures.metric_figure(
        metric_frame().iloc[0:0], chart, window_start=WINDOW.start, window_end=WINDOW.end
    )

    assert figure.layout.annotations[0].text == "No gpu_temperature_c samples in this window"


@pytest.mark.parametrize(
    ("seconds", "label"),
    [(60, "1 min"), (300, "5 min"), (3600, "1 h"), (86_400, "1 d"), (90, "90 s")],
)
def test_duration_label(seconds: int, label: str) -> None:
    assert figures.duration_label(seconds) == label
