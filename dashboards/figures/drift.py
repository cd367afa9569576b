"""Charts of the drift and skew pages: one feature's distribution on both sides, drift over
time as a features x time heatmap, and feature-value mismatches."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

from analyzers.drift import FeatureDrift
from analyzers.skew import ValueSkew
from dashboards.data.drift import TimelineCell
from dashboards.figures import CLOSEST_LAYOUT, chart_title, duration_label, empty_figure

REFERENCE_COLOUR = "#94a3b8"
CURRENT_COLOUR = "#2563eb"
DRIFTED_COLOUR = "#dc2626"
STABLE_COLOUR = "#d1fae5"
HEATMAP_ROW_PX = 28
#: 0 (no drift) green, 1 (drifted) red, nothing in between.
HEATMAP_COLOURS = [
    [0, STABLE_COLOUR],
    [0.5, STABLE_COLOUR],
    [0.5, DRIFTED_COLOUR],
    [1, DRIFTED_COLOUR],
]


def distribution_figure(
    feature: FeatureDrift, *, reference_label: str = "baseline", current_label: str = "window"
) -> go.Figure:
    """Both sides of one feature from the drift result's plot data: shares per bin (the same
    bins on both sides) for numbers, shares per category for the rest."""
    verdict = "drifted" if feature.drifted else "no drift"
    title = (
        f"{feature.feature}: {feature.test} {_number(feature.statistic)} "
        f"(threshold {_number(feature.threshold)}), {verdict}"
    )
    plot = feature.plot or {}
    if plot.get("type") == "histogram" and plot.get("edges"):
        return _histogram_figure(plot, title, reference_label, current_label)
    if plot.get("type") == "categories" and plot.get("categories"):
        return _category_figure(plot, title, reference_label, current_label)
    return empty_figure("No values to plot", title=title)


def _histogram_figure(
    plot: dict[str, Any], title: str, reference_label: str, current_label: str
) -> go.Figure:
    edges = [float(e) for e in plot["edges"]]
    bins = list(itertools.pairwise(edges))
    centres = [(low + high) / 2 for low, high in bins]
    widths = [high - low for low, high in bins]
    figure = go.Figure()
    for key, name, colour in _sides(reference_label, current_label):
        figure.add_trace(
            go.Bar(
                x=centres,
                y=[100 * share for share in plot[key]],
                width=widths,
                name=name,
                marker={"color": colour},
                opacity=0.6,
                customdata=bins,
                hovertemplate=(
                    f"[%{{customdata[0]:.4g}}, %{{customdata[1]:.4g}}): %{{y:.1f}}%<extra>{name}"
                    "</extra>"
                ),
            )
        )
    figure.update_layout(
        **CLOSEST_LAYOUT,
        title=chart_title(title),
        barmode="overlay",
        bargap=0,
        yaxis={"title": "% of values"},
        xaxis={"title": "value"},
        height=360,
    )
    return figure


def _sides(reference_label: str, current_label: str) -> tuple[tuple[str, str, str], ...]:
    """(key in the plot data, name, colour) of the reference side, then of the current one."""
    return (
        ("reference", reference_label, REFERENCE_COLOUR),
        ("current", current_label, CURRENT_COLOUR),
    )


def _category_figure(
    plot: dict[str, Any], title: str, reference_label: str, current_label: str
) -> go.Figure:
    figure = go.Figure()
    for key, name, colour in _sides(reference_label, current_label):
        figure.add_trace(
            go.Bar(
                x=[str(c) for c in plot["categories"]],
                y=[100 * share for share in plot[key]],
                name=name,
                marker={"color": colour},
                hovertemplate=f"%{{x}}: %{{y:.1f}}%<extra>{name}</extra>",
            )
        )
    figure.update_layout(
        **CLOSEST_LAYOUT,
        title=chart_title(title),
        barmode="group",
        yaxis={"title": "% of values"},
        xaxis={"type": "category"},
        height=360,
    )
    return figure


def drift_heatmap(cells: Sequence[TimelineCell], *, bucket_seconds: int) -> go.Figure:
    """Features (rows) by time bucket (columns): red where the bucket drifted against the
    baseline, green where it did not, blank where the bucket had no records. The hover shows
    the test and its score (p-value or distance)."""
    title = f"Drift over time ({duration_label(bucket_seconds)} buckets against the baseline)"
    if not cells:
        return empty_figure("No records in any bucket of the window", title=title)
    features = sorted({cell.feature for cell in cells})
    starts = sorted({cell.start for cell in cells})
    row = {name: i for i, name in enumerate(features)}
    column = {start: i for i, start in enumerate(starts)}
    z: list[list[float | None]] = [[None] * len(starts) for _ in features]
    text: list[list[str]] = [[""] * len(starts) for _ in features]
    for cell in cells:
        i, j = row[cell.feature], column[cell.start]
        z[i][j] = 1.0 if cell.drifted else 0.0
        verdict = "drifted" if cell.drifted else "no drift"
        text[i][j] = f"{cell.test} {_number(cell.score)} · {verdict}"
    figure = go.Figure(
        go.Heatmap(
            x=starts,
            y=features,
            z=z,
            text=text,
            zmin=0,
            zmax=1,
            colorscale=HEATMAP_COLOURS,
            showscale=False,
            xgap=1,
            ygap=1,
            hovertemplate="%{y} · %{x}<br>%{text}<extra></extra>",
        )
    )
    figure.update_layout(
        **CLOSEST_LAYOUT,
        title=chart_title(title),
        height=max(220, 110 + HEATMAP_ROW_PX * len(features)),
        yaxis={"autorange": "reversed", "type": "category"},
    )
    return figure


def value_skew_figure(values: Sequence[ValueSkew], *, join_key: str) -> go.Figure:
    """Share of joined entities whose value differs, per feature."""
    title = f"Feature values that differ for the same {join_key}"
    if not values:
        return empty_figure("No feature present on both sides", title=title)
    ordered = sorted(values, key=lambda v: -v.mismatch_rate)
    figure = go.Figure(
        go.Bar(
            x=[100 * v.mismatch_rate for v in ordered],
            y=[v.feature for v in ordered],
            orientation="h",
            marker={
                "color": [DRIFTED_COLOUR if v.num_mismatched else REFERENCE_COLOUR for v in ordered]
            },
            customdata=[[v.num_mismatched, v.num_joined] for v in ordered],
            hovertemplate="%{y}: %{x:.1f}% (%{customdata[0]:,} of %{customdata[1]:,})"
            "<extra></extra>",
        )
    )
    figure.update_layout(
        **CLOSEST_LAYOUT,
        title=chart_title(title),
        xaxis={"title": "% of joined entities", "rangemode": "tozero"},
        yaxis={"autorange": "reversed"},
        height=max(200, 100 + 30 * len(ordered)),
    )
    return figure


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"
