"""Addresses of the UI's pages with their URL state, for links from one page down to another.

Every page keeps its state in the query string, so a link is the page's path and the
parameters it should open with; empty values are left out.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from analyzers.rootcause import Cause
from dashboards.components import query_string
from dashboards.data.triage import TriageView

UI_PREFIX = "/ui"


def page_url(path: str, **params: Any) -> str:
    """``/ui/<path>?name=value...``; `path` is the page's path ("/" for the overview)."""
    return f"{UI_PREFIX}{path}" + query_string(
        (name, format_param(value)) for name, value in params.items()
    )


def format_param(value: Any) -> Any:
    """Times as RFC 3339 in UTC to the second (``2026-11-20T16:00:00Z``); the rest as given."""
    if isinstance(value, dt.datetime):
        moment = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value
        return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def triage_url(
    model: str,
    start: Any,
    end: Any,
    *,
    baseline_start: Any = None,
    baseline_end: Any = None,
) -> str:
    return page_url(
        "/triage",
        model=model,
        start=start,
        end=end,
        baseline_start=baseline_start,
        baseline_end=baseline_end,
    )


def latency_url(model: str, start: Any, end: Any, *, by: str | None = None) -> str:
    return page_url("/latency", model=model, start=start, end=end, by=by)


def drift_url(
    model: str,
    start: Any,
    end: Any,
    *,
    version: str | None = None,
    feature: str | None = None,
    baseline_start: Any = None,
    baseline_end: Any = None,
    reference: str | None = None,
) -> str:
    return page_url(
        "/drift",
        model=model,
        version=version,
        start=start,
        end=end,
        baseline_start=baseline_start,
        baseline_end=baseline_end,
        reference=reference,
        feature=feature,
    )


def infra_url(start: Any, end: Any, *, host: str | None = None) -> str:
    return page_url("/infra", start=start, end=end, host=host)


def traces_url(model: str, start: Any, end: Any, *, trace: str | None = None) -> str:
    return page_url("/traces", model=model, start=start, end=end, trace=trace)


def profiler_url(
    model: str,
    *,
    profile: int | None = None,
    base: int | None = None,
    target: int | None = None,
) -> str:
    return page_url("/profiler", model=model, profile=profile, base=base, target=target)


# --- from a diagnosis --------------------------------------------------------------------------


def for_cause(cause: Cause, view: TriageView) -> list[tuple[str, str]]:
    """Where to look at a cause's evidence, as (text, href) pairs: the version's latency, the
    host's metrics, the dependency's traces, the feature's drift, the operator's profiler
    diff. Times: the diagnosis window, or baseline and window together for time series."""
    model, windows = view.model, view.windows
    scope = cause.scope
    found: list[tuple[str, str]] = []
    if cause.kind in ("model_operator", "deploy") and view.profiles is not None:
        base, target = view.profiles
        found.append(
            (
                f"profiler diff {base.model_version} → {target.model_version}",
                profiler_url(model, base=base.id, target=target.id),
            )
        )
    host = scope.get("host")
    if host is not None:
        found.append((f"{host} metrics", infra_url(windows.baseline_start, windows.end, host=host)))
    if "span" in scope or cause.kind == "dependency_latency":
        found.append(("slowest traces", traces_url(model, windows.start, windows.end)))
    feature = scope.get("feature")
    if cause.kind == "data_drift" and feature is not None:
        found.append(
            (
                f"drift of {feature}",
                drift_url(
                    model,
                    windows.start,
                    windows.end,
                    feature=feature,
                    baseline_start=windows.baseline_start,
                    baseline_end=windows.baseline_end,
                ),
            )
        )
    if cause.kind in ("deploy", "traffic_surge", "input_size", "error_spike") or host:
        by = "host" if host else None
        found.append(("latency", latency_url(model, windows.baseline_start, windows.end, by=by)))
    return found


def for_diagnosis(view: TriageView) -> list[tuple[str, str]]:
    """The pages that show the diagnosed window, as (text, href) pairs."""
    model, windows = view.model, view.windows
    found = [
        ("traces of the window", traces_url(model, windows.start, windows.end)),
        ("latency, baseline and window", latency_url(model, windows.baseline_start, windows.end)),
        (
            "drift of the window against the baseline",
            drift_url(
                model,
                windows.start,
                windows.end,
                baseline_start=windows.baseline_start,
                baseline_end=windows.baseline_end,
            ),
        ),
        ("GPU and host metrics", infra_url(windows.baseline_start, windows.end)),
    ]
    if view.profiles is not None:
        base, target = view.profiles
        found.insert(
            1,
            (
                f"profiler diff {base.model_version} → {target.model_version}",
                profiler_url(model, base=base.id, target=target.id),
            ),
        )
    return found
