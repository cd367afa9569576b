"""Charts of the triage page: one per check of the diagnosis, drawn from the check's evidence
(and, for the checks that read per-minute series, from the diagnosis inputs)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from analyzers.rootcause import CheckResult
from dashboards.data.triage import TriageView
from dashboards.figures import (
    CLOSEST_LAYOUT,
    EVENT_COLOURS,
    add_vertical_line,
    chart_title,
    empty_figure,
)

BASELINE_COLOUR = "#94a3b8"
WINDOW_COLOUR = "#2563eb"
BAD_COLOUR = "#dc2626"
NEW_COLOUR = "#d97706"
ONSET_COLOUR = "#dc2626"
CHECK_HEIGHT = 280
MAX_BARS = 12
#: Host metrics each infra check compares, with their titles.
SATURATION_METRICS = {
    "gpu_utilization_pct": "GPU utilization %",
    "gpu_memory_share": "GPU memory used (share)",
}
HEALTH_METRICS = {
    "gpu_temperature_c": "GPU temperature °C",
    "gpu_sm_clock_mhz": "SM clock MHz",
    "gpu_throttled": "throttled share",
    "cpu_utilization_pct": "CPU utilization %",
}
PERIODS = (("baseline", "baseline", BASELINE_COLOUR), ("window", "window", WINDOW_COLOUR))


def check_figure(check: CheckResult, view: TriageView) -> go.Figure | None:
    """The chart of one check, or None where there is nothing to draw (a skipped check, or
    evidence without numbers)."""
    if check.status == "skipped":
        return None
    builder = CHART_BUILDERS.get(check.check)
    figure = builder(check, view) if builder is not None else None
    if figure is not None and figure.layout.height is None:  # an empty chart saying why
        figure.update_layout(height=CHECK_HEIGHT)
    return figure


def _layout(title: str, **extra: Any) -> dict[str, Any]:
    layout = {**CLOSEST_LAYOUT, "height": CHECK_HEIGHT}
    layout["margin"] = {"l": 55, "r": 15, "t": 64, "b": 36}
    return {**layout, "title": chart_title(title), **extra}


def _period_bars(
    x: Sequence[str],
    values: Callable[[str], Sequence[Any]],
    *,
    hover: str,
    window_text: Sequence[str] | None = None,
) -> go.Figure:
    """Grouped bars at each `x`: the baseline's (grey) beside the window's (blue), whose
    heights `values(period)` gives. `hover` is the hover text (the period's name follows it);
    `window_text` is written above the window's bars."""
    figure = go.Figure()
    for period, name, colour in PERIODS:
        figure.add_trace(
            go.Bar(
                x=list(x),
                y=list(values(period)),
                name=name,
                marker={"color": colour},
                hovertemplate=f"{hover}<extra>{name}</extra>",
            )
        )
    if window_text is not None:
        figure.data[1].update(text=list(window_text), textposition="outside", cliponaxis=False)
    return figure


# --- isolate -----------------------------------------------------------------------------------


def symptom_figure(evidence: Mapping[str, Any]) -> go.Figure:
    """p50, p95 and p99 in the baseline and in the window."""
    names = [("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99")]
    figure = go.Figure()
    for period, label, colour in PERIODS:
        stats = evidence.get(period) or {}
        figure.add_trace(
            go.Bar(
                x=[label_ for _, label_ in names],
                y=[stats.get(key) for key, _ in names],
                name=f"{label} ({stats.get('num_requests', 0):,} requests)",
                marker={"color": colour},
                hovertemplate=f"%{{x}} %{{y:,.1f}} ms<extra>{label}</extra>",
            )
        )
    figure.update_layout(
        **_layout("Latency percentiles, baseline against window"),
        barmode="group",
        yaxis={"title": "ms", "rangemode": "tozero"},
    )
    return figure


def slices_figure(rows: Sequence[Mapping[str, Any]], dim: str, quantile: float) -> go.Figure:
    """Per value of `dim` (version, host, ...): the percentile in the baseline and in the
    window; the label says the value's share of the window and its contribution to the rise."""
    label = f"p{round(quantile * 100)}"
    title = f"{label} per {_dim_label(dim)}: baseline against window"
    if not rows:
        return empty_figure(f"No {_dim_label(dim)} with traffic", title=title)
    rows = sorted(rows, key=lambda r: -(r.get("contribution") or 0.0))[:MAX_BARS]
    figure = _period_bars(
        [str(r["value"]) for r in rows],
        lambda period: [r.get(f"{period}_q") for r in rows],
        hover="%{x}: %{y:,.1f} ms",
        window_text=[
            f"{100 * (r.get('window_share') or 0):.0f}% of traffic · "
            f"{100 * (r.get('contribution') or 0):.0f}% of rise"
            for r in rows
        ],
    )
    figure.update_layout(
        **_layout(title), barmode="group", yaxis={"title": "ms", "rangemode": "tozero"}
    )
    return figure


def _dim_label(dim: str) -> str:
    return "version" if dim == "model_version" else dim


def minute_latency_figure(
    minutes: pd.DataFrame,
    *,
    baseline_start: dt.datetime,
    window_start: dt.datetime,
    window_end: dt.datetime,
    onset_at: dt.datetime | None = None,
    events: Sequence[Mapping[str, Any]] = (),
) -> go.Figure:
    """p95 per minute over the baseline and the window (shaded), with the changes recorded
    before the onset and the onset itself as vertical lines."""
    title = "p95 per minute, with changes and the onset"
    if minutes.empty:
        return empty_figure("No traffic in the baseline or the window", title=title)
    frame = minutes.sort_values("bucket_start")
    figure = go.Figure(
        go.Scatter(
            x=frame["bucket_start"],
            y=frame["p95"],
            name="p95",
            mode="lines",
            line={"color": WINDOW_COLOUR, "width": 1.6},
            hovertemplate="%{y:,.1f} ms<extra>p95</extra>",
        )
    )
    _shade_periods(figure, baseline_start, window_start, window_end)
    for event in events:
        colour = EVENT_COLOURS.get(str(event["kind"]), "#6b7280")
        add_vertical_line(figure, event["timestamp"], color=colour, width=1.2, dash="dot")
        figure.add_annotation(
            x=event["timestamp"],
            y=1,
            yref="paper",
            text=_event_label(event),
            showarrow=False,
            xanchor="right",
            yanchor="top",
            font={"size": 11},
        )
    if onset_at is not None:
        add_vertical_line(figure, onset_at, color=ONSET_COLOUR, width=2, dash="dot")
        figure.add_annotation(
            x=onset_at, y=0.85, yref="paper", text="onset", showarrow=False, xanchor="left"
        )
    figure.update_layout(
        **_layout(title),
        yaxis={"title": "ms", "rangemode": "tozero"},
        xaxis={"range": [baseline_start, window_end]},
        showlegend=False,
    )
    return figure


def _event_label(event: Mapping[str, Any]) -> str:
    version = event.get("model_version")
    return f"{event['kind']} {version}" if version else str(event["kind"])


def _shade_periods(
    figure: go.Figure, baseline_start: dt.datetime, window_start: dt.datetime, end: dt.datetime
) -> None:
    for x0, x1, colour in (
        (baseline_start, window_start, BASELINE_COLOUR),
        (window_start, end, WINDOW_COLOUR),
    ):
        figure.add_vrect(x0=x0, x1=x1, fillcolor=colour, opacity=0.08, line_width=0, layer="below")


def minute_series_figure(
    minutes: pd.DataFrame, column: str, *, title: str, unit: str, bars: bool = False
) -> go.Figure:
    """A per-minute series of the diagnosis inputs, coloured by period."""
    if minutes.empty or column not in minutes or minutes[column].isna().all():
        return empty_figure("No per-minute data", title=title)
    figure = go.Figure()
    for period, name, colour in PERIODS:
        part = minutes[minutes["period"] == period].sort_values("bucket_start")
        trace = go.Bar if bars else go.Scatter
        options: dict[str, Any] = (
            {"marker": {"color": colour}}
            if bars
            else {
                "mode": "lines",
                "line": {"color": colour, "width": 1.6},
            }
        )
        figure.add_trace(
            trace(
                x=part["bucket_start"],
                y=part[column],
                name=name,
                hovertemplate=f"%{{y:,.1f}} {unit}<extra>{name}</extra>",
                **options,
            )
        )
    figure.update_layout(**_layout(title), bargap=0, yaxis={"title": unit, "rangemode": "tozero"})
    return figure


def pair_figure(
    before: tuple[str, float | None],
    after: tuple[str, float | None],
    *,
    title: str,
    unit: str,
    scale: float = 1.0,
) -> go.Figure:
    """Two bars: one number before (grey) and after (blue), e.g. the error rate of the baseline
    and of the window."""
    labels = [before[0], after[0]]
    values = [None if v is None else v * scale for v in (before[1], after[1])]
    figure = go.Figure(
        go.Bar(
            x=labels,
            y=values,
            marker={"color": [BASELINE_COLOUR, WINDOW_COLOUR]},
            text=["-" if v is None else f"{v:,.2f} {unit}" for v in values],
            textposition="outside",
            cliponaxis=False,
            hovertemplate=f"%{{x}}: %{{y:,.2f}} {unit}<extra></extra>",
        )
    )
    figure.update_layout(
        **_layout(title), yaxis={"title": unit, "rangemode": "tozero"}, showlegend=False
    )
    return figure


# --- data --------------------------------------------------------------------------------------


def feature_drift_figure(rows: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Each feature's drift statistic, drifted features in red; the hover names the test and
    its threshold."""
    title = "Feature drift, baseline against window"
    if not rows:
        return empty_figure("No features compared", title=title)
    rows = sorted(rows, key=lambda r: (not r.get("drifted"), str(r["feature"])))[:MAX_BARS]
    figure = go.Figure(
        go.Bar(
            x=[r.get("statistic") for r in rows],
            y=[str(r["feature"]) for r in rows],
            orientation="h",
            marker={"color": [BAD_COLOUR if r.get("drifted") else BASELINE_COLOUR for r in rows]},
            customdata=[[r.get("test"), r.get("threshold")] for r in rows],
            hovertemplate="%{y}: %{customdata[0]} %{x:.4g} (threshold %{customdata[1]})"
            "<extra></extra>",
        )
    )
    figure.update_layout(
        **_layout(title), yaxis={"autorange": "reversed"}, xaxis={"title": "statistic"}
    )
    return figure


def null_rates_figure(rows: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Share of missing values per feature, baseline against window."""
    title = "Missing values per feature"
    if not rows:
        return empty_figure("No features compared", title=title)
    rows = sorted(rows, key=lambda r: -(r.get("delta") or 0.0))[:MAX_BARS]
    figure = _period_bars(
        [str(r["feature"]) for r in rows],
        lambda period: [100 * (r.get(period) or 0.0) for r in rows],
        hover="%{x}: %{y:.1f}% missing",
    )
    figure.update_layout(**_layout(title), barmode="group", yaxis={"title": "% missing"})
    return figure


def skew_figure(rows: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Each feature's distance from the training data in both periods, as a multiple of its
    test's threshold (1 = the threshold); schema problems are listed in the hover."""
    title = "Skew against the training reference"
    distribution = [r for r in rows if r.get("issue") == "distribution" and r.get("threshold")]
    if not distribution:
        return empty_figure("No feature compared with the training data", title=title)
    features = sorted({str(r["feature"]) for r in distribution})[:MAX_BARS]
    schema = {
        str(r["feature"]): str(r["issue"]).replace("_", " ")
        for r in rows
        if r.get("issue") != "distribution" and r.get("period") == "window"
    }
    figure = go.Figure()
    for period, name, colour in PERIODS:
        by_feature = {
            str(r["feature"]): (r.get("statistic") or 0.0) / r["threshold"]
            for r in distribution
            if r.get("period") == period
        }
        figure.add_trace(
            go.Bar(
                x=features,
                y=[by_feature.get(f) for f in features],
                name=name,
                marker={"color": colour},
                customdata=[schema.get(f, "") for f in features],
                hovertemplate="%{x}: %{y:.2f}x the threshold %{customdata}"
                f"<extra>{name}</extra>",
            )
        )
    figure.add_hline(y=1.0, line={"color": BAD_COLOUR, "dash": "dot"})
    figure.update_layout(
        **_layout(title), barmode="group", yaxis={"title": "statistic / threshold"}
    )
    return figure


def span_changes_figure(rows: Sequence[Mapping[str, Any]], *, title: str) -> go.Figure:
    """Mean duration per span name, baseline against window; the window bar says the share
    of the request's added time the span accounts for."""
    if not rows:
        return empty_figure("No span compared in both periods", title=title)
    rows = sorted(rows, key=lambda r: -(r.get("share") or 0.0))[:MAX_BARS]
    figure = _period_bars(
        [str(r["name"]) for r in rows],
        lambda period: [r.get(f"{period}_mean_ms") for r in rows],
        hover="%{x}: %{y:,.2f} ms mean",
        window_text=[f"{100 * (r.get('share') or 0):.0f}% of added time" for r in rows],
    )
    figure.update_layout(
        **_layout(title), barmode="group", yaxis={"title": "ms", "rangemode": "tozero"}
    )
    return figure


# --- infra -------------------------------------------------------------------------------------


def host_metrics_figure(
    rows: Sequence[Mapping[str, Any]], metrics: Mapping[str, str], *, title: str
) -> go.Figure:
    """Per host, each metric in `metrics` that was collected: baseline against window, one
    panel per metric."""
    present = [m for m in metrics if any(r.get(f"{m}:window") is not None for r in rows)]
    if not present:
        return empty_figure("None of these metrics was collected", title=title)
    hosts = [str(r["host"]) for r in rows]
    figure = make_subplots(rows=1, cols=len(present), subplot_titles=[metrics[m] for m in present])
    for column, metric in enumerate(present, start=1):
        for period, name, colour in PERIODS:
            figure.add_trace(
                go.Bar(
                    x=hosts,
                    y=[r.get(f"{metric}:{period}") for r in rows],
                    name=name,
                    marker={"color": colour},
                    showlegend=column == 1,
                    legendgroup=period,
                    hovertemplate=f"%{{x}}: %{{y:,.1f}}<extra>{name}</extra>",
                ),
                row=1,
                col=column,
            )
    figure.update_layout(**_layout(title), barmode="group")
    figure.update_annotations(font={"size": 11})
    return figure


# --- model -------------------------------------------------------------------------------------


def operators_figure(
    rows: Sequence[Mapping[str, Any]], *, base_version: str, target_version: str
) -> go.Figure:
    """Operators ranked by the self time the new version adds per profiler step; new
    operators in amber."""
    title = f"Operator time added by {target_version} over {base_version} (per step)"
    if not rows:
        return empty_figure("No operator takes longer", title=title)
    rows = list(rows)[:MAX_BARS]
    labels = [f"{r['name']} (new)" if r.get("is_new") else str(r["name"]) for r in rows]
    figure = go.Figure(
        go.Bar(
            x=[(r.get("delta_us") or 0.0) / 1000 for r in rows],
            y=labels,
            orientation="h",
            marker={"color": [NEW_COLOUR if r.get("is_new") else BAD_COLOUR for r in rows]},
            customdata=[
                [(r.get("base_us") or 0.0) / 1000, (r.get("target_us") or 0.0) / 1000] for r in rows
            ],
            hovertemplate="%{y}: +%{x:,.3f} ms (%{customdata[0]:,.3f} -> %{customdata[1]:,.3f})"
            "<extra></extra>",
        )
    )
    figure.update_layout(
        **_layout(title), yaxis={"autorange": "reversed"}, xaxis={"title": "ms added per step"}
    )
    return figure


# --- dispatch ----------------------------------------------------------------------------------

Builder = Callable[[CheckResult, TriageView], "go.Figure | None"]


def _tag_slices(check: CheckResult, view: TriageView) -> go.Figure | None:
    dims = [key for key in check.evidence if key != "quantile"]
    if not dims:
        return None
    rows = [
        {**row, "value": f"{dim}={row['value']}" if len(dims) > 1 else row["value"]}
        for dim in dims
        for row in check.evidence[dim]
    ]
    return slices_figure(rows, dims[0] if len(dims) == 1 else "tag value", _q(check))


def _q(check: CheckResult) -> float:
    return float(check.evidence.get("quantile", 0.95))


def _changes(check: CheckResult, view: TriageView) -> go.Figure:
    windows = view.windows
    events = [
        e for e in check.evidence.get("events", []) if _timestamp(e) >= windows.baseline_start
    ]
    return minute_latency_figure(
        view.inputs.minute_series,
        baseline_start=windows.baseline_start,
        window_start=windows.start,
        window_end=windows.end,
        onset_at=view.inputs.onset_at,
        events=[{**e, "timestamp": _timestamp(e)} for e in events],
    )


def _timestamp(event: Mapping[str, Any]) -> dt.datetime:
    return pd.Timestamp(event["timestamp"]).to_pydatetime()


def _errors(check: CheckResult, view: TriageView) -> go.Figure:
    evidence = check.evidence
    return pair_figure(
        ("baseline", evidence.get("baseline_error_rate")),
        ("window", evidence.get("window_error_rate")),
        title="Error rate",
        unit="%",
        scale=100.0,
    )


def _version_latency(check: CheckResult, view: TriageView) -> go.Figure | None:
    evidence = check.evidence
    if "new_version" not in evidence:
        return None
    label = f"p{round(float(evidence.get('quantile', 0.95)) * 100)}"
    return pair_figure(
        (str(evidence["previous_version"]), evidence.get("previous_q_ms")),
        (str(evidence["new_version"]), evidence.get("new_q_ms")),
        title=f"{label} of the previous and the new version",
        unit="ms",
    )


def _operators(check: CheckResult, view: TriageView) -> go.Figure:
    evidence = check.evidence
    return operators_figure(
        evidence.get("operators", []),
        base_version=str(evidence.get("base_version")),
        target_version=str(evidence.get("target_version")),
    )


#: The chart of each check (by the check's name), from its evidence and the inputs.
CHART_BUILDERS: dict[str, Builder] = {
    "symptom": lambda check, view: symptom_figure(check.evidence),
    "versions": lambda check, view: slices_figure(
        check.evidence.get("slices", []), "model_version", _q(check)
    ),
    "hosts": _tag_slices,
    "segments": _tag_slices,
    "changes": _changes,
    "traffic": lambda check, view: minute_series_figure(
        view.inputs.minute_series,
        "num_requests",
        title="Requests per minute",
        unit="requests",
        bars=True,
    ),
    "errors": _errors,
    "input_size": lambda check, view: minute_series_figure(
        view.inputs.minute_series,
        "mean_input_size",
        title="Mean input size per minute",
        unit="input size",
    ),
    "feature_drift": lambda check, view: feature_drift_figure(check.evidence.get("features", [])),
    "null_rates": lambda check, view: null_rates_figure(check.evidence.get("features", [])),
    "skew": lambda check, view: skew_figure(check.evidence.get("rows", [])),
    "dependencies": lambda check, view: span_changes_figure(
        check.evidence.get("spans", []), title="Dependency span durations (mean)"
    ),
    "gpu_saturation": lambda check, view: host_metrics_figure(
        check.evidence.get("hosts", []), SATURATION_METRICS, title="GPU load per host"
    ),
    "host_health": lambda check, view: host_metrics_figure(
        check.evidence.get("hosts", []), HEALTH_METRICS, title="Host health per host"
    ),
    "version_latency": _version_latency,
    "span_breakdown": lambda check, view: span_changes_figure(
        check.evidence.get("spans", []), title="The model's own spans (mean duration)"
    ),
    "operators": _operators,
}
