"""Triage: a model's detected latency regressions, and the diagnosis of a window.

The diagnosis is observe's own (`observe.pipeline.diagnosis`: its inputs loaded from rollups,
then `analyzers.rootcause.diagnose`); the inputs are kept beside the result, so the page can
chart the per-minute series the checks read. Besides it, the slowest traces of the window and
the two profiler traces the model step compared, for the links down.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from analyzers.rootcause import CheckResult, Diagnosis, DiagnosisInputs, diagnose
from dashboards.data import InputError, Verdict, Window, onset_of, resolve_window
from observe.api.errors import ApiError
from observe.api.params import parse_time
from observe.pipeline.diagnosis import Windows, load_inputs
from observe.pipeline.traces import list_slowest_traces
from observe.schemas.findings import FindingOut
from observe.schemas.profiles import ProfileOut
from observe.storage import findings as finding_store
from observe.storage import models as model_store
from observe.storage import profiles as profile_store

REGRESSION_KIND = "latency_regression"
DEFAULT_WINDOW_SECONDS = 3600
#: A regression is diagnosed over the time from its onset until it was last seen, kept
#: between these lengths (the baseline is as long, just before the onset).
REGRESSION_WINDOW_MIN = dt.timedelta(minutes=15)
REGRESSION_WINDOW_MAX = dt.timedelta(hours=1)
NUM_REGRESSIONS = 20
NUM_SLOW_TRACES = 5
STEPS = ("isolate", "data", "infra", "model")
STEP_TITLES = {
    "isolate": "1 · Isolate",
    "data": "2 · Data",
    "infra": "3 · Infra",
    "model": "4 · Model",
}
#: Badge colour of each check status.
STATUS_KINDS = {"pass": "ok", "fail": "breached", "inconclusive": "warn", "skipped": "none"}


@dataclass(frozen=True)
class Regression:
    """A stored latency-regression finding of a model, to diagnose with one click."""

    finding_id: int
    model: str
    model_version: str | None
    status: str
    summary: str
    onset_at: dt.datetime
    last_seen_at: dt.datetime

    def window(self, *, now: dt.datetime) -> Window:
        return regression_window(self.onset_at, self.last_seen_at, now=now)


def regression_of(finding: FindingOut) -> Regression:
    return Regression(
        finding_id=finding.id,
        model=finding.model,
        model_version=finding.model_version,
        status=finding.status,
        summary=finding.summary,
        onset_at=onset_of(finding),
        last_seen_at=finding.window_end,
    )


def regression_window(
    onset_at: dt.datetime, last_seen_at: dt.datetime | None, *, now: dt.datetime
) -> Window:
    """The window to diagnose a regression in: from its onset, as long as it was seen (15 min
    to 1 h), not past `now` unless that leaves less than the shortest window."""
    seen = (last_seen_at or onset_at + REGRESSION_WINDOW_MAX) - onset_at
    length = min(max(seen, REGRESSION_WINDOW_MIN), REGRESSION_WINDOW_MAX)
    current = now.replace(second=0, microsecond=0)
    end = min(onset_at + length, max(current, onset_at + REGRESSION_WINDOW_MIN))
    return Window(onset_at, end)


def load_regressions(
    sessions: sessionmaker[Session], model: str, *, limit: int = NUM_REGRESSIONS
) -> list[Regression]:
    """The model's latency regressions, most recently updated first (open and resolved)."""
    with sessions() as session:
        findings = finding_store.load_findings(
            session, model=model, kinds=[REGRESSION_KIND], limit=limit
        )
    return [regression_of(finding) for finding in findings]


@dataclass(frozen=True)
class TriageView:
    """A diagnosis with what it was computed from and where to look next.

    `slow_traces`: the window's slowest traces (dicts as `list_slowest_traces` returns);
    `profiles`: the (base, target) profiler traces the operators check compared, if any.
    """

    model: str
    windows: Windows
    inputs: DiagnosisInputs
    diagnosis: Diagnosis
    slow_traces: list[dict[str, Any]]
    profiles: tuple[ProfileOut, ProfileOut] | None

    @property
    def window(self) -> Window:
        return Window(self.windows.start, self.windows.end)

    @property
    def span(self) -> Window:
        """Baseline and window together: what a chart of the change shows."""
        return Window(self.windows.baseline_start, self.windows.end)

    def checks_of(self, step: str) -> list[CheckResult]:
        return [check for check in self.diagnosis.steps if check.step == step]

    def check(self, name: str) -> CheckResult | None:
        return next((c for c in self.diagnosis.steps if c.check == name), None)


def resolve_windows(
    start: str | None,
    end: str | None,
    baseline_start: str | None = None,
    baseline_end: str | None = None,
) -> Windows:
    """The diagnosis window from URL values: an hour before `end` by default, the baseline as
    long just before it unless both baseline bounds are given."""
    window = resolve_window(start, end, default_seconds=DEFAULT_WINDOW_SECONDS)
    try:
        base_start = parse_time(baseline_start or None, "baseline_start")
        base_end = parse_time(baseline_end or None, "baseline_end")
        return Windows.resolve(window.start, window.end, base_start, base_end)
    except ApiError as error:
        raise InputError(error.detail) from None
    except ValueError as error:
        raise InputError(str(error)) from None


def load_triage(
    sessions: sessionmaker[Session],
    *,
    model: str,
    windows: Windows,
    rollup_tags: Sequence[str],
) -> TriageView:
    """Diagnose `model` over `windows` (InputError for a model that does not exist)."""
    with sessions() as session:
        if model_store.get_model(session, model) is None:
            raise InputError(f"no model named {model!r}")
        inputs = load_inputs(session, model=model, windows=windows, rollup_tags=rollup_tags)
        diagnosis = diagnose(inputs)
        slow = list_slowest_traces(
            session, start=windows.start, end=windows.end, model=model, limit=NUM_SLOW_TRACES
        )
        profiles = _compared_profiles(session, model, inputs, windows)
    return TriageView(model, windows, inputs, diagnosis, slow, profiles)


def _compared_profiles(
    session: Session, model: str, inputs: DiagnosisInputs, windows: Windows
) -> tuple[ProfileOut, ProfileOut] | None:
    """The traces the diagnosis diffed: each version's nearest the window's end."""
    if inputs.operator_versions is None:
        return None
    base_version, target_version = inputs.operator_versions
    base = profile_store.find_latest_profile(session, model, base_version, near=windows.end)
    target = profile_store.find_latest_profile(session, model, target_version, near=windows.end)
    if base is None or target is None:
        return None
    return base, target


def step_verdict(check: CheckResult) -> Verdict:
    """A check's status as a badge."""
    return Verdict(STATUS_KINDS.get(check.status, "none"), check.status)


def describe_symptom(diagnosis: Diagnosis) -> str:
    """``p95 latency 25.8 ms -> 57.4 ms (+123%)`` or the error-rate equivalent."""
    symptom = diagnosis.symptom
    if symptom.baseline is None or symptom.current is None:
        return "not enough traffic to compare the window with its baseline"
    if symptom.metric == "error_rate":
        values = f"{100 * symptom.baseline:.2f}% -> {100 * symptom.current:.2f}%"
        name = "error rate"
    else:
        values = f"{symptom.baseline:,.1f} ms -> {symptom.current:,.1f} ms"
        name = symptom.metric.replace("_latency_ms", "") + " latency"
    change = f" ({100 * symptom.change:+.0f}%)" if symptom.change is not None else ""
    return f"{name} {values}{change}"
