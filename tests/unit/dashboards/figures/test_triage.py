"""dashboards.figures.triage: a chart per check, from hand-made evidence."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import pytest

from analyzers.rootcause import CheckResult
from dashboards.figures import triage as triage_figures
from tests.unit.dashboards.builders import T0, WINDOWS, triage_view


def bars(figure: Any) -> dict[str, Any]:
    return {trace.name: trace for trace in figure.data}


def slice_row(value: str, baseline_q: float | None, window_q: float, **extra: Any) -> dict:
    return {
        "value": value,
        "baseline_q": baseline_q,
        "window_q": window_q,
        "window_share": extra.get("share", 0.5),
        "contribution": extra.get("contribution", 0.0),
    }


def test_the_symptom_compares_percentiles_of_both_periods() -> None:
    evidence = {
        "baseline": {"num_requests": 1200, "p50_ms": 19.9, "p95_ms": 25.8, "p99_ms": 28.5},
        "window": {"num_requests": 1150, "p50_ms": 21.1, "p95_ms": 57.4, "p99_ms": 70.1},
    }

    figure = triage_figures.symptom_figure(evidence)

    baseline, window = figure.data
    assert list(baseline.x) == ["p50", "p95", "p99"]
    assert list(baseline.y) == [19.9, 25.8, 28.5]
    assert list(window.y) == [21.1, 57.4, 70.1]
    assert window.name == "window (1,150 requests)"


def test_slices_show_both_periods_and_the_contribution_most_contributing_first() -> None:
    rows = [
        slice_row("v6", 25.8, 25.8, share=0.75, contribution=0.0),
        slice_row("v7", None, 67.4, share=0.25, contribution=1.0),
    ]

    figure = triage_figures.slices_figure(rows, "model_version", 0.95)

    baseline, window = figure.data
    assert list(window.x) == ["v7", "v6"]
    assert list(baseline.y) == [None, 25.8]
    assert list(window.y) == [67.4, 25.8]
    assert window.text[0] == "25% of traffic · 100% of rise"
    assert figure.layout.title.text == "p95 per version: baseline against window"


def test_the_changes_chart_marks_events_and_the_onset_over_the_minute_p95() -> None:
    onset = T0 + dt.timedelta(minutes=1)
    event = {
        "timestamp": (T0 - dt.timedelta(minutes=1)).isoformat(),
        "kind": "canary",
        "model_version": "v7",
    }
    early = {**event, "timestamp": (WINDOWS.baseline_start - dt.timedelta(hours=2)).isoformat()}
    check = CheckResult("isolate", "changes", "fail", "", {"events": [event, early]})

    figure = triage_figures.check_figure(check, triage_view(onset_at=onset))

    assert figure is not None
    [line] = figure.data
    assert len(line.x) == 120
    dotted = [s for s in figure.layout.shapes if s.type == "line"]
    assert [s.x0 for s in dotted] == [T0 - dt.timedelta(minutes=1), onset]
    assert [a.text for a in figure.layout.annotations] == ["canary v7", "onset"]
    shaded = [s for s in figure.layout.shapes if s.type == "rect"]
    assert [(s.x0, s.x1) for s in shaded] == [(WINDOWS.baseline_start, T0), (T0, WINDOWS.end)]


def test_traffic_is_requests_per_minute_by_period() -> None:
    check = CheckResult("isolate", "traffic", "pass", "", {"ratio": 1.5})

    figure = triage_figures.check_figure(check, triage_view())

    assert figure is not None
    series = bars(figure)
    assert set(series["baseline"].y) == {20}
    assert set(series["window"].y) == {30}
    assert len(series["window"].x) == 60


def test_errors_compare_rates_in_percent() -> None:
    evidence = {"baseline_error_rate": 0.004, "window_error_rate": 0.05}
    check = CheckResult("isolate", "errors", "fail", "", evidence)

    figure = triage_figures.check_figure(check, triage_view())

    assert figure is not None
    assert list(figure.data[0].y) == pytest.approx([0.4, 5.0])
    assert list(figure.data[0].text) == ["0.40 %", "5.00 %"]


def test_input_size_without_sizes_says_so() -> None:
    minutes = pd.DataFrame(
        {"bucket_start": [T0], "period": ["window"], "num_requests": [3], "mean_input_size": [None]}
    )
    check = CheckResult("data", "input_size", "pass", "", {})

    figure = triage_figures.check_figure(check, triage_view(minutes=minutes))

    assert figure is not None
    assert figure.layout.annotations[0].text == "No per-minute data"
    assert figure.layout.height == triage_figures.CHECK_HEIGHT


def test_drifted_features_are_red_and_first() -> None:
    rows = [
        {
            "feature": "country",
            "test": "chisquare",
            "statistic": 1.2,
            "threshold": 0.05,
            "drifted": False,
        },
        {"feature": "amount", "test": "ks", "statistic": 0.4, "threshold": 0.05, "drifted": True},
    ]

    figure = triage_figures.feature_drift_figure(rows)

    [bar] = figure.data
    assert list(bar.y) == ["amount", "country"]
    assert list(bar.marker.color) == [triage_figures.BAD_COLOUR, triage_figures.BASELINE_COLOUR]


def test_span_changes_show_both_means_and_the_share_of_added_time() -> None:
    rows = [
        {"name": "forward", "baseline_mean_ms": 15.2, "window_mean_ms": 24.7, "share": 1.0},
        {"name": "tokenize", "baseline_mean_ms": 1.0, "window_mean_ms": 1.0, "share": 0.0},
    ]
    check = CheckResult("model", "span_breakdown", "fail", "", {"spans": rows})

    figure = triage_figures.check_figure(check, triage_view())

    assert figure is not None
    _baseline, window = figure.data
    assert list(window.x) == ["forward", "tokenize"]
    assert list(window.y) == [24.7, 1.0]
    assert list(window.text) == ["100% of added time", "0% of added time"]


def test_host_metrics_get_a_panel_per_collected_metric() -> None:
    rows = [
        {"host": "gpu-1", "gpu_temperature_c:baseline": 65.0, "gpu_temperature_c:window": 66.0},
        {"host": "gpu-2", "gpu_temperature_c:baseline": 65.0, "gpu_temperature_c:window": 92.0},
    ]
    check = CheckResult("infra", "host_health", "fail", "", {"hosts": rows})

    figure = triage_figures.check_figure(check, triage_view())

    assert figure is not None
    assert [a.text for a in figure.layout.annotations] == ["GPU temperature °C"]
    window = [t for t in figure.data if t.name == "window"]
    assert [list(t.y) for t in window] == [[66.0, 92.0]]


def test_operators_are_ranked_with_new_ones_marked() -> None:
    rows = [
        {
            "name": "aten::addmm",
            "base_us": 98.7,
            "target_us": 367.1,
            "delta_us": 268.4,
            "is_new": False,
        },
        {
            "name": "aten::native_layer_norm",
            "base_us": 0.0,
            "target_us": 57.4,
            "delta_us": 57.4,
            "is_new": True,
        },
    ]
    evidence = {"base_version": "v6", "target_version": "v7", "operators": rows}
    check = CheckResult("model", "operators", "fail", "", evidence)

    figure = triage_figures.check_figure(check, triage_view())

    assert figure is not None
    [bar] = figure.data
    assert list(bar.y) == ["aten::addmm", "aten::native_layer_norm (new)"]
    assert list(bar.x) == pytest.approx([0.2684, 0.0574])
    assert list(bar.marker.color) == [triage_figures.BAD_COLOUR, triage_figures.NEW_COLOUR]
    assert figure.layout.title.text == "Operator time added by v7 over v6 (per step)"


def test_version_latency_compares_the_two_versions() -> None:
    evidence = {
        "previous_version": "v6",
        "new_version": "v7",
        "quantile": 0.95,
        "previous_q_ms": 25.8,
        "new_q_ms": 67.4,
    }
    check = CheckResult("model", "version_latency", "fail", "", evidence)

    figure = triage_figures.check_figure(check, triage_view())

    assert figure is not None
    assert list(figure.data[0].x) == ["v6", "v7"]
    assert list(figure.data[0].y) == [25.8, 67.4]


def test_hosts_of_several_tags_are_labelled_by_tag() -> None:
    evidence = {
        "quantile": 0.99,
        "host": [slice_row("gpu-1", 20.0, 21.0)],
        "node": [slice_row("n-1", 20.0, 80.0, contribution=0.9)],
    }
    check = CheckResult("isolate", "hosts", "pass", "", evidence)

    figure = triage_figures.check_figure(check, triage_view())

    assert figure is not None
    assert list(figure.data[1].x) == ["node=n-1", "host=gpu-1"]
    assert figure.layout.title.text.startswith("p99 per tag value")


def test_skipped_checks_and_evidence_without_numbers_have_no_chart() -> None:
    view = triage_view()

    assert (
        triage_figures.check_figure(CheckResult("data", "null_rates", "skipped", ""), view) is None
    )
    assert triage_figures.check_figure(CheckResult("isolate", "segments", "pass", ""), view) is None
    assert (
        triage_figures.check_figure(CheckResult("model", "version_latency", "pass", ""), view)
        is None
    )


def test_every_check_of_the_checklist_has_a_chart() -> None:
    from analyzers.rootcause import CHECKS

    names = {check.__name__.removeprefix("check_") for check in CHECKS}

    assert names == set(triage_figures.CHART_BUILDERS)


def test_skew_chart_shows_each_period_against_the_threshold() -> None:
    from dashboards.figures.triage import skew_figure

    rows = [
        {
            "period": "baseline",
            "feature": "amount",
            "issue": "distribution",
            "statistic": 0.05,
            "threshold": 0.1,
        },
        {
            "period": "window",
            "feature": "amount",
            "issue": "distribution",
            "statistic": 0.3,
            "threshold": 0.1,
        },
        {"period": "window", "feature": "device", "issue": "missing"},
    ]

    figure = skew_figure(rows)

    baseline, window = figure.data
    assert list(baseline.x) == ["amount"]
    assert list(baseline.y) == [0.5]
    assert list(window.y) == pytest.approx([3.0])
    assert "Skew" in figure.layout.title.text
    assert skew_figure([]).layout.annotations  # an empty state says why
