"""dashboards.data.triage: the pure parts (regression windows, verdicts, the symptom line)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from analyzers.rootcause import CheckResult
from dashboards.data import InputError, Verdict
from dashboards.data import triage as triage_data
from observe.schemas.findings import FindingOut
from tests.unit.dashboards.builders import T0, symptom, triage_view

NOW = T0 + dt.timedelta(days=1)


@pytest.mark.parametrize(
    ("seen_minutes", "expected_minutes"),
    [(5, 15), (40, 40), (600, 60)],
)
def test_a_regression_is_diagnosed_from_its_onset_for_as_long_as_it_was_seen(
    seen_minutes: int, expected_minutes: int
) -> None:
    window = triage_data.regression_window(T0, T0 + dt.timedelta(minutes=seen_minutes), now=NOW)

    assert window.start == T0
    assert window.end == T0 + dt.timedelta(minutes=expected_minutes)


def test_a_fresh_regression_window_stops_at_now() -> None:
    now = T0 + dt.timedelta(minutes=25, seconds=40)

    window = triage_data.regression_window(T0, T0 + dt.timedelta(hours=3), now=now)

    assert window.end == T0 + dt.timedelta(minutes=25)


def test_a_regression_starts_at_its_stored_onset() -> None:
    finding = FindingOut(
        id=4,
        kind="latency_regression",
        model="checkout",
        model_version="v7",
        window_start=T0 - dt.timedelta(hours=1),
        window_end=T0 + dt.timedelta(hours=3),
        status="open",
        summary="p95 rose",
        details={"onset_at": (T0 + dt.timedelta(minutes=5)).isoformat()},
        dedupe_key="k",
        created_at=T0,
        updated_at=T0,
    )

    regression = triage_data.regression_of(finding)

    assert (regression.finding_id, regression.model_version) == (4, "v7")
    assert regression.onset_at == T0 + dt.timedelta(minutes=5)
    window = regression.window(now=NOW)
    assert (window.start, window.end) == (
        T0 + dt.timedelta(minutes=5),
        T0 + dt.timedelta(minutes=65),
    )


def test_windows_default_to_an_hour_and_a_baseline_as_long_before() -> None:
    windows = triage_data.resolve_windows("2026-11-16T12:00:00Z", "2026-11-16T12:30:00Z")

    assert (windows.baseline_start, windows.baseline_end) == (
        T0 - dt.timedelta(minutes=30),
        T0,
    )
    default = triage_data.resolve_windows(None, "2026-11-16T12:00:00Z")
    assert default.start == T0 - dt.timedelta(hours=1)


def test_windows_take_an_explicit_baseline() -> None:
    windows = triage_data.resolve_windows(
        "2026-11-16T12:00:00Z",
        "2026-11-16T13:00:00Z",
        "2026-11-15T12:00:00Z",
        "2026-11-15T13:00:00Z",
    )

    assert windows.baseline_start == T0 - dt.timedelta(days=1)
    assert windows.baseline_end == T0 - dt.timedelta(hours=23)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (("-1x", None, None, None), "start: "),
        (("-1h", None, "-3h", None), "give both baseline_start and baseline_end"),
        (("-2h", "-1h", "-90m", "now"), "baseline_end: "),
        (("-2h", "-1h", "-3h", "-30m"), "the baseline must end before the window starts"),
    ],
)
def test_bad_windows_say_what_is_wrong(values: tuple[str | None, ...], message: str) -> None:
    with pytest.raises(InputError, match=message):
        triage_data.resolve_windows(*values)


@pytest.mark.parametrize(
    ("status", "kind"),
    [("pass", "ok"), ("fail", "breached"), ("inconclusive", "warn"), ("skipped", "none")],
)
def test_each_status_has_its_badge(status: str, kind: str) -> None:
    check = CheckResult("isolate", "versions", status, "")  # type: ignore[arg-type]

    assert triage_data.step_verdict(check) == Verdict(kind, status)


def test_the_symptom_line_names_the_metric_and_its_change() -> None:
    view = triage_view()

    assert triage_data.describe_symptom(view.diagnosis) == "p95 latency 25.8 ms -> 57.4 ms (+122%)"


def test_an_error_rate_symptom_is_in_percent() -> None:
    diagnosis = dataclasses.replace(
        triage_view().diagnosis,
        symptom=symptom(metric="error_rate", baseline=0.004, current=0.05, change=11.5),
    )

    assert triage_data.describe_symptom(diagnosis) == "error rate 0.40% -> 5.00% (+1150%)"


def test_without_traffic_the_symptom_says_so() -> None:
    diagnosis = dataclasses.replace(
        triage_view().diagnosis, symptom=symptom(baseline=None, current=None)
    )

    assert "not enough traffic" in triage_data.describe_symptom(diagnosis)


def test_checks_are_grouped_by_step_in_checklist_order() -> None:
    checks = [
        CheckResult("isolate", "symptom", "fail", ""),
        CheckResult("isolate", "versions", "fail", ""),
        CheckResult("model", "operators", "fail", ""),
    ]

    view = triage_view(checks)

    assert [c.check for c in view.checks_of("isolate")] == ["symptom", "versions"]
    assert view.checks_of("infra") == []
    assert view.check("operators") is checks[2]
    assert view.check("hosts") is None
