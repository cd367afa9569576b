"""Charts of the traces page: a trace's span waterfall and span-duration percentiles over
time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from dashboards.figures import (
    BASE_LAYOUT,
    CLOSEST_LAYOUT,
    chart_title,
    colour,
    empty_figure,
    series_lines,
)

ERROR_COLOUR = "#dc2626"
ROW_PX = 26
MAX_ATTRIBUTES_SHOWN = 8
INDENT = "\u00a0\u00a0"  # plotly keeps non-breaking spaces at the start of tick labels


def waterfall_figure(spans: Sequence[Mapping[str, Any]], *, title: str) -> go.Figure:
    """Spans as bars from their start offset for their duration, one row each in tree order
    (children indented under their parent), coloured by service; failed spans red. Hover
    shows kind, status and attributes; `customdata[0]` is the span's row (for clicks)."""
    if not spans:
        return empty_figure("This trace has no spans stored", title=title)
    services = sorted({str(s.get("service_name")) for s in spans})
    colours = {service: colour(i) for i, service in enumerate(services)}
    labels = [INDENT * int(s.get("depth") or 0) + str(s["name"]) for s in spans]
    figure = go.Figure()
    for service in services:
        rows = [i for i, s in enumerate(spans) if str(s.get("service_name")) == service]
        figure.add_trace(
            go.Bar(
                y=rows,
                x=[spans[i]["duration_ms"] for i in rows],
                base=[spans[i]["offset_ms"] for i in rows],
                orientation="h",
                name=service,
                marker={
                    "color": [_bar_colour(spans[i], colours[service]) for i in rows],
                    "line": {"width": 0},
                },
                customdata=[[i, _hover_text(spans[i])] for i in rows],
                hovertemplate="%{customdata[1]}<extra></extra>",
            )
        )
    height = max(220, 110 + ROW_PX * len(spans))
    figure.update_layout(
        **CLOSEST_LAYOUT,
        title=chart_title(title),
        barmode="overlay",
        height=height,
        xaxis={"title": "milliseconds from the trace's start", "rangemode": "tozero"},
        yaxis={
            "tickmode": "array",
            "tickvals": list(range(len(spans))),
            "ticktext": labels,
            "autorange": "reversed",
            "automargin": True,
        },
    )
    return figure


def _bar_colour(span: Mapping[str, Any], service_colour: str) -> str:
    return ERROR_COLOUR if span.get("status_code") == "error" else service_colour


def _hover_text(span: Mapping[str, Any]) -> str:
    lines = [
        f"<b>{span['name']}</b> · {span.get('service_name')} · {span.get('kind')}",
        f"{span['duration_ms']:,.2f} ms, from +{span['offset_ms']:,.2f} ms",
        f"status {span.get('status_code')}"
        + (f": {span['status_message']}" if span.get("status_message") else ""),
    ]
    attributes = span.get("attributes") or {}
    for name, value in list(attributes.items())[:MAX_ATTRIBUTES_SHOWN]:
        lines.append(f"{name} = {value}")
    if len(attributes) > MAX_ATTRIBUTES_SHOWN:
        lines.append(f"… {len(attributes) - MAX_ATTRIBUTES_SHOWN} more (click the span)")
    return "<br>".join(lines)


def span_percentiles_figure(
    frame: pd.DataFrame,
    *,
    percentile_column: str,
    window_start: dt.datetime,
    window_end: dt.datetime,
    bucket_label: str,
) -> go.Figure:
    """One line per span name: the chosen duration percentile per bucket."""
    title = f"{percentile_column} span duration per {bucket_label}, per span name"
    if frame.empty:
        return empty_figure("No spans of this model in the window", title=title)
    figure = go.Figure(
        series_lines(
            frame,
            percentile_column,
            width=1.6,
            customdata=["num_spans"],
            hover=f"%{{y:,.2f}} ms {percentile_column} · %{{customdata[0]:,}} spans",
        )
    )
    figure.update_layout(
        **BASE_LAYOUT,
        title=chart_title(title),
        yaxis={"title": "milliseconds", "rangemode": "tozero"},
        xaxis={"range": [window_start, window_end]},
        height=360,
    )
    return figure
