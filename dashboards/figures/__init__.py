"""Plotly figures for the UI pages: pure functions from loaded data to `go.Figure`.

Nothing here reads a database or a request; every function can be called (and is tested) on
hand-made frames. Works with plotly 5 and 6.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from dashboards.data import ChangePoint, EventMarker, LatencyView, MetricChart, ModelRow

PALETTE = (
    "#2563eb",
    "#d97706",
    "#059669",
    "#7c3aed",
    "#db2777",
    "#0891b2",
    "#65a30d",
    "#dc2626",
    "#4b5563",
    "#9333ea",
)
EVENT_COLOURS = {
    "deploy": "#2563eb",
    "rollback": "#dc2626",
    "canary": "#d97706",
    "config": "#7c3aed",
    "scale": "#059669",
    "incident": "#b91c1c",
    "other": "#6b7280",
}
CHANGE_POINT_COLOUR = "#dc2626"
SLO_COLOUR = "#b91c1c"
BASE_LAYOUT = {
    "template": "plotly_white",
    "margin": {"l": 60, "r": 20, "t": 84, "b": 40},
    "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
    "hovermode": "x unified",
    "font": {"family": "system-ui, -apple-system, Segoe UI, sans-serif", "size": 12},
}
#: The layout of charts whose hover shows the bar or cell under the pointer, instead of every
#: series at that time.
CLOSEST_LAYOUT = {**BASE_LAYOUT, "hovermode": "closest"}


def colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def empty_figure(message: str, *, title: str = "") -> go.Figure:
    """A blank chart that says why it is blank."""
    figure = go.Figure()
    figure.update_layout(
        **{**BASE_LAYOUT, "hovermode": False},
        title=chart_title(title),
        xaxis={"visible": False},
        yaxis={"visible": False},
        annotations=[
            {
                "text": message,
                "xref": "paper",
                "yref": "paper",
                "x": 0.5,
                "y": 0.5,
                "showarrow": False,
                "font": {"size": 14, "color": "#6b7280"},
            }
        ],
    )
    return figure


def add_vertical_line(figure: go.Figure, x: Any, **line: Any) -> None:
    """A line at `x` across the plot's full height (an event, a bound); `line` is its style:
    color, width, dash."""
    figure.add_shape(type="line", x0=x, x1=x, y0=0, y1=1, xref="x", yref="paper", line=line)


def series_lines(
    frame: pd.DataFrame, column: str, *, width: float, customdata: list[str], hover: str
) -> list[go.Scatter]:
    """A line per value of the frame's `series` column (in order, each its own colour) through
    `column` per `bucket_start`. `hover` is the hover text, whose ``customdata[i]`` are the
    `customdata` columns; the series' name follows it."""
    lines = []
    for index, (name, group) in enumerate(frame.groupby("series", sort=True)):
        group = group.sort_values("bucket_start")
        lines.append(
            go.Scatter(
                x=group["bucket_start"],
                y=group[column],
                name=str(name),
                mode="lines",
                line={"color": colour(index), "width": width},
                customdata=group[customdata].to_numpy(),
                hovertemplate=f"{hover}<extra>{name}</extra>",
            )
        )
    return lines


# --- latency -----------------------------------------------------------------------------------


def latency_figure(view: LatencyView) -> go.Figure:
    """The chosen percentile per series over time, with the SLO bound, events as vertical
    lines and latency-regression findings as change points."""
    column = view.percentile_column
    title = f"{view.model}: p{view.percentile:g} latency per {_by_label(view.by)}"
    if not view.has_traffic:
        return empty_figure("No traffic in this window", title=title)
    figure = go.Figure(
        series_lines(
            view.frame,
            column,
            width=2,
            customdata=["num_requests", "mean_ms"],
            hover=f"%{{y:,.1f}} ms p{view.percentile:g} · %{{customdata[0]:,}} requests",
        )
    )
    y_top = _y_top(view.frame[column], view)
    _add_slo_line(figure, view)
    _add_events(figure, view.events, y_top)
    _add_change_points(figure, view.change_points, y_top)
    figure.update_layout(
        **BASE_LAYOUT,
        title=chart_title(title),
        yaxis={"title": "milliseconds", "rangemode": "tozero"},
        xaxis={"range": [view.window.start, view.window.end]},
    )
    return figure


def traffic_figure(view: LatencyView) -> go.Figure:
    """Requests per bucket per series, stacked, with the overall error rate."""
    title = f"{view.model}: requests per {duration_label(view.bucket_seconds)} and error rate"
    if not view.has_traffic:
        return empty_figure("No traffic in this window", title=title)
    figure = go.Figure()
    for index, (name, group) in enumerate(view.frame.groupby("series", sort=True)):
        group = group.sort_values("bucket_start")
        figure.add_trace(
            go.Bar(
                x=group["bucket_start"],
                y=group["num_requests"],
                name=str(name),
                marker={"color": colour(index)},
                hovertemplate=f"%{{y:,}} requests<extra>{name}</extra>",
            )
        )
    totals = view.frame.groupby("bucket_start")[["num_requests", "num_errors"]].sum()
    figure.add_trace(
        go.Scatter(
            x=totals.index,
            y=100.0 * totals["num_errors"] / totals["num_requests"],
            name="error rate",
            mode="lines",
            yaxis="y2",
            line={"color": SLO_COLOUR, "width": 1.5, "dash": "dot"},
            hovertemplate="%{y:.2f}% errors<extra></extra>",
        )
    )
    figure.update_layout(
        **BASE_LAYOUT,
        title=chart_title(title),
        barmode="stack",
        bargap=0.05,
        yaxis={"title": "requests"},
        yaxis2={
            "title": "error rate %",
            "overlaying": "y",
            "side": "right",
            "rangemode": "tozero",
            "showgrid": False,
        },
        xaxis={"range": [view.window.start, view.window.end]},
    )
    return figure


def _y_top(values: pd.Series, view: LatencyView) -> float:
    top = float(values.max()) if len(values) else 0.0
    if view.slo is not None and view.slo.latency_ms is not None:
        top = max(top, float(view.slo.latency_ms))
    return top * 1.05 or 1.0


def _add_slo_line(figure: go.Figure, view: LatencyView) -> None:
    slo = view.slo
    if slo is None or slo.latency_ms is None or slo.latency_percentile != view.percentile:
        return
    figure.add_trace(
        go.Scatter(
            x=[view.window.start, view.window.end],
            y=[slo.latency_ms, slo.latency_ms],
            name=f"SLO p{slo.latency_percentile:g} ≤ {slo.latency_ms:g} ms",
            mode="lines",
            line={"color": SLO_COLOUR, "dash": "dash", "width": 1.5},
            hoverinfo="skip",
        )
    )


def _add_events(figure: go.Figure, events: Sequence[EventMarker], y_top: float) -> None:
    """A vertical line per event, and one hoverable marker trace per event kind at the top."""
    for event in events:
        add_vertical_line(
            figure, event.at, color=EVENT_COLOURS.get(event.kind, "#6b7280"), width=1, dash="dot"
        )
    by_kind: dict[str, list[EventMarker]] = {}
    for event in events:
        by_kind.setdefault(event.kind, []).append(event)
    for kind, items in by_kind.items():
        figure.add_trace(
            go.Scatter(
                x=[e.at for e in items],
                y=[y_top] * len(items),
                name=f"{kind} events",
                mode="markers",
                marker={"symbol": "triangle-down", "size": 11, "color": EVENT_COLOURS.get(kind)},
                text=[e.label for e in items],
                hovertemplate="%{text}<extra></extra>",
            )
        )


def _add_change_points(figure: go.Figure, points: Sequence[ChangePoint], y_top: float) -> None:
    if not points:
        return
    for point in points:
        add_vertical_line(figure, point.at, color=CHANGE_POINT_COLOUR, width=2)
    figure.add_trace(
        go.Scatter(
            x=[p.at for p in points],
            y=[y_top * 0.94] * len(points),
            name="change points",
            mode="markers",
            marker={"symbol": "x", "size": 11, "color": CHANGE_POINT_COLOUR},
            text=[f"{p.summary} ({p.status})" for p in points],
            hovertemplate="%{text}<extra></extra>",
        )
    )


# --- overview ----------------------------------------------------------------------------------


def slo_figure(rows: Sequence[ModelRow]) -> go.Figure:
    """Each model's latency at its SLO percentile as a share of the SLO bound (100 % = at the
    bound), so models with different objectives compare on one axis."""
    measured = [
        row
        for row in rows
        if row.model.slo.latency_ms is not None and row.model.slo_status.latency_ms is not None
    ]
    title = "Latency against SLO (100% = at the objective)"
    if not measured:
        return empty_figure("No model has both a latency SLO and traffic here", title=title)
    names = [row.model.name for row in measured]
    shares = [
        100.0
        * float(row.model.slo_status.latency_ms or 0.0)
        / float(row.model.slo.latency_ms or 1.0)
        for row in measured
    ]
    labels = [
        f"p{row.model.slo.latency_percentile:g} {row.model.slo_status.latency_ms:,.1f} ms "
        f"of {row.model.slo.latency_ms:g} ms"
        for row in measured
    ]
    figure = go.Figure(
        go.Bar(
            x=shares,
            y=names,
            orientation="h",
            marker={"color": [SLO_COLOUR if share > 100 else PALETTE[2] for share in shares]},
            text=labels,
            textposition="auto",
            hovertemplate="%{y}: %{text}<extra></extra>",
        )
    )
    add_vertical_line(figure, 100, color=SLO_COLOUR, dash="dash")
    figure.update_layout(
        **CLOSEST_LAYOUT,
        title=chart_title(title),
        xaxis={"title": "% of SLO bound", "rangemode": "tozero"},
        yaxis={"autorange": "reversed"},
        height=max(180, 70 + 40 * len(measured)),
        showlegend=False,
    )
    return figure


# --- infra -------------------------------------------------------------------------------------


def metric_figure(
    frame: pd.DataFrame, chart: MetricChart, *, window_start: dt.datetime, window_end: dt.datetime
) -> go.Figure:
    """One metric over time, a line per (host, resource) of the bucket means; the hover shows
    the bucket's peak too."""
    title = f"{chart.title} ({chart.unit})"
    if frame.empty:
        return empty_figure(f"No {chart.name} samples in this window", title=title)
    figure = go.Figure()
    groups = frame.groupby(["host", "resource"], sort=True)
    for index, ((host, resource), group) in enumerate(groups):
        group = group.sort_values("bucket_start")
        label = f"{host}/{resource}"
        figure.add_trace(
            go.Scatter(
                x=group["bucket_start"],
                y=group["mean"],
                name=label,
                mode="lines",
                line={"color": colour(index), "width": 1.6},
                customdata=group[["max"]].to_numpy(),
                hovertemplate=(
                    f"%{{y:,.1f}} {chart.unit} (peak %{{customdata[0]:,.1f}})<extra>{label}</extra>"
                ),
            )
        )
    yaxis: dict[str, object] = {"title": chart.unit, "rangemode": "tozero"}
    if chart.y_max is not None:
        yaxis["range"] = [0, chart.y_max * 1.02]
    figure.update_layout(
        **BASE_LAYOUT,
        title=chart_title(title),
        yaxis=yaxis,
        xaxis={"range": [window_start, window_end]},
        height=320,
    )
    return figure


# --- weekly reports ----------------------------------------------------------------------------

WEEK = dt.timedelta(days=7)
PREVIOUS_COLOUR = "#9ca3af"
OK_COLOUR = PALETTE[2]


def week_over_week_figure(
    current: pd.DataFrame,
    previous: pd.DataFrame,
    *,
    column: str,
    label: str,
    week_start: dt.datetime,
    bound: float | None = None,
    unit: str = "ms",
) -> go.Figure:
    """A metric per bucket this week, with the week before laid over it (shifted by 7 days),
    and an objective as a dashed line. Frames have `bucket_start` and `column`."""
    title = f"{label}: this week against the week before"
    if current.empty and previous.empty:
        return empty_figure("No traffic in either week", title=title)
    figure = go.Figure()
    for name, frame, shift, style in (
        ("week before", previous, WEEK, {"color": PREVIOUS_COLOUR, "width": 1.5, "dash": "dot"}),
        ("this week", current, dt.timedelta(0), {"color": colour(0), "width": 2}),
    ):
        if frame.empty:
            continue
        frame = frame.sort_values("bucket_start")
        figure.add_trace(
            go.Scatter(
                x=pd.to_datetime(frame["bucket_start"], utc=True) + shift,
                y=frame[column],
                name=name,
                mode="lines",
                line=style,
                hovertemplate=f"%{{y:,.1f}} {unit}<extra>{name}</extra>",
            )
        )
    end = week_start + WEEK
    if bound is not None:
        figure.add_trace(
            go.Scatter(
                x=[week_start, end],
                y=[bound, bound],
                name=f"objective {bound:g} {unit}",
                mode="lines",
                line={"color": SLO_COLOUR, "dash": "dash", "width": 1.5},
                hoverinfo="skip",
            )
        )
    figure.update_layout(
        **BASE_LAYOUT,
        title=chart_title(title),
        yaxis={"title": unit, "rangemode": "tozero"},
        xaxis={"range": [week_start, end]},
        height=320,
    )
    return figure


def gpu_headroom_figure(devices: pd.DataFrame, *, memory_warning_pct: float = 90.0) -> go.Figure:
    """Per GPU, mean utilization and peak memory use as a share of the device's memory; peaks
    past `memory_warning_pct` are red. Columns: host, resource, mean_utilization_pct,
    max_memory_used_mb, memory_total_mb."""
    title = "GPU utilization and peak memory (% of the device)"
    if devices.empty:
        return empty_figure("No GPU metrics in this window", title=title)
    names = [f"{h}/{r}" for h, r in zip(devices["host"], devices["resource"], strict=True)]
    total = pd.to_numeric(devices["memory_total_mb"], errors="coerce")
    used = pd.to_numeric(devices["max_memory_used_mb"], errors="coerce")
    memory_pct = (100.0 * used / total.where(total > 0)).round(2)
    utilization = pd.to_numeric(devices["mean_utilization_pct"], errors="coerce").round(2)
    figure = go.Figure(
        [
            go.Bar(
                y=names,
                x=utilization,
                name="mean utilization",
                orientation="h",
                marker={"color": colour(0)},
                hovertemplate="%{y}: %{x:.1f}% utilization<extra></extra>",
            ),
            go.Bar(
                y=names,
                x=memory_pct,
                name="peak memory used",
                orientation="h",
                marker={
                    "color": [
                        SLO_COLOUR if value > memory_warning_pct else OK_COLOUR
                        for value in memory_pct.fillna(0)
                    ]
                },
                hovertemplate="%{y}: %{x:.1f}% of memory at peak<extra></extra>",
            ),
        ]
    )
    add_vertical_line(figure, memory_warning_pct, color=SLO_COLOUR, dash="dash")
    figure.update_layout(
        **CLOSEST_LAYOUT,
        title=chart_title(title),
        barmode="group",
        xaxis={"title": "%", "range": [0, 100]},
        yaxis={"autorange": "reversed"},
        height=max(200, 90 + 44 * len(names)),
    )
    return figure


def drift_strength_figure(features: pd.DataFrame, *, title: str) -> go.Figure:
    """Each feature's drift strength (its test's distance over the threshold, or the
    threshold over its p-value: 1 is the threshold), drifted features in red. Columns:
    feature, test, strength, drifted."""
    if features.empty:
        return empty_figure("No features compared", title=title)
    strength = pd.to_numeric(features["strength"], errors="coerce").fillna(0.0)
    figure = go.Figure(
        go.Bar(
            y=features["feature"],
            x=strength,
            orientation="h",
            marker={"color": [SLO_COLOUR if d else OK_COLOUR for d in features["drifted"]]},
            text=features["test"],
            hovertemplate="%{y}: %{x:.2f} times the threshold (%{text})<extra></extra>",
        )
    )
    add_vertical_line(figure, 1, color=SLO_COLOUR, dash="dash")
    figure.update_layout(
        **CLOSEST_LAYOUT,
        title=chart_title(title),
        xaxis={"title": "strength (1 = threshold)", "type": "log"}
        if strength.max() > 20
        else {"title": "strength (1 = threshold)", "rangemode": "tozero"},
        yaxis={"autorange": "reversed"},
        height=max(180, 80 + 36 * len(features)),
        showlegend=False,
    )
    return figure


def week_over_week_changes_figure(changes: pd.DataFrame) -> go.Figure:
    """Per model, the relative change of requests, error rate and p95 against the week
    before, in percent. Columns: model, requests, error_rate, p95 (fractions, or None)."""
    title = "Change against the week before"
    if changes.empty:
        return empty_figure("No models", title=title)
    figure = go.Figure()
    for index, (column, label) in enumerate(
        (("requests", "requests"), ("error_rate", "error rate"), ("p95", "p95 latency"))
    ):
        values = pd.to_numeric(changes[column], errors="coerce") * 100.0
        figure.add_trace(
            go.Bar(
                y=changes["model"],
                x=values.round(2),
                name=label,
                orientation="h",
                marker={"color": colour(index)},
                hovertemplate=f"%{{y}}: %{{x:+.1f}}% {label}<extra></extra>",
            )
        )
    figure.update_layout(
        **CLOSEST_LAYOUT,
        title=chart_title(title),
        barmode="group",
        xaxis={"title": "% change", "zeroline": True},
        yaxis={"autorange": "reversed"},
        height=max(200, 90 + 60 * len(changes)),
    )
    return figure


def _by_label(by: str) -> str:
    return {"model_version": "version", "all": "model (all versions)"}.get(by, by)


def duration_label(seconds: int) -> str:
    """``5 min``, ``1 h``, ``1 d``: a bucket length for titles."""
    for unit, length in (("d", 86_400), ("h", 3600), ("min", 60)):
        if seconds % length == 0:
            return f"{seconds // length} {unit}"
    return f"{seconds} s"


def chart_title(text: str) -> dict[str, object]:
    """Titles sit top left, above the legend."""
    return {"text": text, "x": 0.01, "xanchor": "left", "y": 0.97, "yanchor": "top"}
