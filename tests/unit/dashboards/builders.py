"""Hand-made inputs for the UI's pure functions: a diagnosis with chosen checks, profiles."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from analyzers.rootcause import (
    Cause,
    CheckResult,
    Comparison,
    Diagnosis,
    DiagnosisInputs,
    SliceStats,
    Symptom,
)
from dashboards.data.triage import TriageView
from observe.pipeline.diagnosis import Windows
from observe.schemas.profiles import ProfileOut

T0 = dt.datetime(2026, 11, 16, 12, 0, tzinfo=dt.UTC)
WINDOWS = Windows.resolve(T0, T0 + dt.timedelta(hours=1))


def symptom(**overrides: Any) -> Symptom:
    base: dict[str, Any] = {
        "metric": "p95_latency_ms",
        "baseline": 25.8,
        "current": 57.4,
        "change": 1.2248,
        "is_regression": True,
        "latency_regressed": True,
        "errors_regressed": False,
    }
    base.update(overrides)
    return Symptom(**base)


def minute_series(minutes: int = 120) -> pd.DataFrame:
    """Per minute over the baseline hour and the window hour: 20 requests, p95 25 ms before
    and 57 ms after, input size 100."""
    rows = []
    for minute in range(minutes):
        at = WINDOWS.baseline_start + dt.timedelta(minutes=minute)
        in_window = at >= WINDOWS.start
        rows.append(
            {
                "bucket_start": at,
                "period": "window" if in_window else "baseline",
                "num_requests": 30 if in_window else 20,
                "p95": 57.0 if in_window else 25.0,
                "mean_ms": 28.0 if in_window else 20.0,
                "mean_input_size": 100.0,
            }
        )
    return pd.DataFrame(rows)


def triage_view(
    checks: list[CheckResult] | None = None,
    causes: list[Cause] | None = None,
    *,
    profiles: tuple[ProfileOut, ProfileOut] | None = None,
    onset_at: dt.datetime | None = None,
    minutes: pd.DataFrame | None = None,
) -> TriageView:
    window = (WINDOWS.start, WINDOWS.end)
    baseline = (WINDOWS.baseline_start, WINDOWS.baseline_end)
    inputs = DiagnosisInputs(
        model="checkout",
        window=window,
        baseline=baseline,
        overall=Comparison(SliceStats(), SliceStats()),
        minute_series=minute_series() if minutes is None else minutes,
        onset_at=onset_at,
    )
    diagnosis = Diagnosis(
        "checkout", window, baseline, symptom(), tuple(checks or ()), tuple(causes or ())
    )
    return TriageView("checkout", WINDOWS, inputs, diagnosis, [], profiles)


def profile(profile_id: int, version: str, **overrides: Any) -> ProfileOut:
    base: dict[str, Any] = {
        "id": profile_id,
        "model": "checkout",
        "model_version": version,
        "host": "gpu-1",
        "captured_at": T0 + dt.timedelta(minutes=profile_id),
        "received_at": T0,
        "file_name": None,
        "sha256": f"{profile_id:064x}",
        "num_bytes": 1000,
        "num_events": 100,
        "num_complete_events": 90,
        "num_operators": 12,
        "num_steps": 4,
        "duration_us": 2000.0,
        "metadata": {},
    }
    base.update(overrides)
    return ProfileOut(**base)
