"""What reports and alerts say about an incident: when a latency regression began, the window
its diagnosis looks at, its top causes, and the link to its triage page."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.orm import Session

from observe.pipeline.diagnosis import Windows, run_diagnosis
from observe.schemas.diagnosis import Period
from observe.schemas.findings import FindingOut
from observe.schemas.reports import CauseBrief, DiagnosisBrief

#: A regression is diagnosed over (at most) its first hour, against the hour before its onset.
DIAGNOSIS_WINDOW = dt.timedelta(hours=1)
#: Shorter windows are not diagnosed: too few minutes to compare.
MIN_DIAGNOSIS_WINDOW = dt.timedelta(minutes=10)
NUM_CAUSES = 3


def onset_of(finding: FindingOut) -> dt.datetime:
    """When a finding's incident began: a regression's `details.onset_at`, an SLO breach's
    `details.since`, else the finding's window start."""
    details = finding.details or {}
    for key in ("onset_at", "since"):
        value = details.get(key)
        if isinstance(value, str):
            try:
                parsed = dt.datetime.fromisoformat(value)
            except ValueError:
                continue
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return finding.window_start


def diagnosis_windows(onset: dt.datetime, *, now: dt.datetime) -> Windows | None:
    """The first hour after `onset` (up to `now`) against as long just before it; None when
    less than `MIN_DIAGNOSIS_WINDOW` has passed."""
    end = min(onset + DIAGNOSIS_WINDOW, now)
    if end - onset < MIN_DIAGNOSIS_WINDOW:
        return None
    return Windows.resolve(onset, end, onset - (end - onset), onset)


def diagnose_briefly(
    session: Session,
    *,
    model: str,
    windows: Windows,
    rollup_tags: Sequence[str],
    num_causes: int = NUM_CAUSES,
) -> DiagnosisBrief:
    """Run the diagnosis and keep the symptom and the top causes."""
    diagnosis = run_diagnosis(session, model=model, windows=windows, rollup_tags=rollup_tags)
    symptom = diagnosis.symptom.as_dict()
    return DiagnosisBrief(
        window=Period(start=windows.start, end=windows.end),
        baseline=Period(start=windows.baseline_start, end=windows.baseline_end),
        metric=str(symptom["metric"]),
        baseline_value=symptom["baseline"],
        current_value=symptom["current"],
        causes=[_cause(cause.as_dict()) for cause in diagnosis.causes[:num_causes]],
    )


def _cause(cause: dict[str, Any]) -> CauseBrief:
    return CauseBrief(
        kind=cause["kind"],
        score=cause["score"],
        scope={str(k): str(v) for k, v in cause["scope"].items()},
        summary=cause["summary"],
        action=cause["action"],
    )


def ui_url(base_url: str, page: str, **params: Any) -> str:
    """A link to a UI page, such as ``{base}/ui/triage?model=M&start=...&end=...``; times are
    written in RFC 3339 (UTC), empty parameters left out."""
    pairs = [(name, _param(value)) for name, value in params.items() if value not in (None, "")]
    query = f"?{urlencode(pairs, safe=':')}" if pairs else ""
    return f"{base_url.rstrip('/')}/ui/{page.lstrip('/')}{query}"


def triage_url(base_url: str, model: str, start: dt.datetime, end: dt.datetime) -> str:
    return ui_url(base_url, "triage", model=model, start=start, end=end)


def _param(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)
