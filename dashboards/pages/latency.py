"""Latency: percentile series per version or tag value from the rollups, with deploys and other
events as markers and stored latency regressions as change points."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import dash
from dash import Dash, Input, Output, dcc, html, no_update

from dashboards import data, figures, links
from dashboards.components import (
    data_table,
    dropdown,
    empty_state,
    model_picker,
    page_layout,
    param_id,
    placeholder_graph,
    radio,
    register_model_choices,
    register_model_view,
    url_values,
    window_picker,
    zoomed_window,
)
from dashboards.data import triage as triage_data

PAGE = "latency"
PARAMS = ("model", "start", "end", "by", "percentile")

dash.register_page(__name__, path="/latency", name="Latency", title="Latency · observe", order=20)


def layout(**url_params: Any) -> html.Div:
    params = url_values(url_params, PARAMS)
    by_value = params["by"] or data.BY_VERSION
    percentile_value = params["percentile"] or f"{data.DEFAULT_PERCENTILE:g}"
    params.update(by=by_value, percentile=percentile_value)
    return page_layout(
        PAGE,
        params,
        title="Latency",
        subtitle="Percentiles per time bucket from the rollups, split by version or by a tag; "
        "dotted lines are events, red lines are detected change points. Drag across the chart "
        "to zoom the window in.",
        pickers=[
            model_picker(PAGE, params["model"]),
            window_picker(PAGE, params["start"], params["end"]),
            dropdown(PAGE, "by", "Split by", by_value, _by_options([by_value])),
            radio(
                PAGE,
                "percentile",
                "Percentile",
                percentile_value,
                _percentile_options(percentile_value),
            ),
        ],
        body=[
            placeholder_graph("latency-chart"),
            placeholder_graph("latency-traffic-chart"),
            html.Div(id="latency-markers"),
        ],
    )


def register_callbacks(app: Dash, context: Any) -> None:
    register_model_choices(
        app,
        PAGE,
        context,
        pickers=["by"],
        choices=lambda _model: [_by_options(data.group_choices(context.settings.rollup_tags))],
    )

    @app.callback(
        Output(param_id(PAGE, "start"), "value", allow_duplicate=True),
        Output(param_id(PAGE, "end"), "value", allow_duplicate=True),
        Input("latency-chart", "relayoutData"),
        prevent_initial_call=True,
    )
    def zoom_in(relayout: dict[str, Any] | None) -> tuple[Any, Any]:
        """Zooming the chart narrows the window in the URL, with finer buckets."""
        window = zoomed_window(relayout)
        return window if window is not None else (no_update, no_update)

    blank = figures.empty_figure("")
    register_model_view(
        app,
        PAGE,
        PARAMS,
        [
            Output("latency-chart", "figure"),
            Output("latency-traffic-chart", "figure"),
            Output("latency-markers", "children"),
        ],
        lambda params: latency_outputs(_load(context, params)),
        blank=(blank, blank, None),
    )


def _load(context: Any, params: dict[str, str | None]) -> data.LatencyView:
    return data.load_latency(
        context.sessions,
        model=str(params["model"]),
        window=data.resolve_window(params["start"], params["end"]),
        by=params["by"] or data.BY_VERSION,
        percentile=data.parse_percentile(params["percentile"]),
        rollup_tags=context.settings.rollup_tags,
    )


def latency_outputs(view: data.LatencyView) -> tuple[Any, ...]:
    return (
        _status(view),
        figures.latency_figure(view),
        figures.traffic_figure(view),
        markers_table(view),
    )


def _status(view: data.LatencyView) -> str:
    requests = int(view.frame["num_requests"].sum()) if view.has_traffic else 0
    return (
        f"{view.model} · {view.window.describe()} · {requests:,} requests · "
        f"{figures.duration_label(view.bucket_seconds)} buckets from {view.source}"
    )


def markers_table(view: data.LatencyView) -> html.Div:
    """Events and change points of the window, in time order."""
    now = dt.datetime.now(dt.UTC)
    rows: list[tuple[dt.datetime, str, str, Any]] = [
        (event.at, event.kind, event.model_version or "", event.description or "")
        for event in view.events
    ] + [
        (
            point.at,
            f"change point ({point.status})",
            point.model_version or "",
            [point.summary, " ", _triage_link(view.model, point, now)],
        )
        for point in view.change_points
    ]
    if not rows:
        return empty_state(
            "No events or change points in this window",
            "Deploys, rollbacks and config changes sent to /api/v1/events (or with "
            "client.log_event) appear here and on the chart.",
        )
    rows.sort(key=lambda row: row[0])
    table = data_table(
        ("Time (UTC)", "What", "Version", ""),
        [
            html.Tr(
                [
                    html.Td(f"{at:%Y-%m-%d %H:%M}"),
                    html.Td(kind, className=f"marker-{kind.split(' ')[0]}"),
                    html.Td(version),
                    html.Td(text),
                ]
            )
            for at, kind, version, text in rows
        ],
    )
    return html.Div([html.H3("Events and change points"), table], id="latency-marker-table")


def _triage_link(model: str, point: data.ChangePoint, now: dt.datetime) -> dcc.Link:
    """Diagnose the regression that starts at a change point."""
    window = triage_data.regression_window(point.at, point.last_seen_at, now=now)
    return dcc.Link(
        "diagnose →",
        href=links.triage_url(model, window.start, window.end),
        className="triage-link",
        id=f"latency-diagnose-{point.finding_id}",
    )


def _percentile_options(current: str) -> list[dict[str, str]]:
    values = [f"{p:g}" for p in data.PERCENTILE_CHOICES]
    if current not in values:
        values.append(current)
    return [{"label": f"p{value}", "value": value} for value in values]


def _by_options(choices: Iterable[str]) -> list[dict[str, str]]:
    return [{"label": _by_label(choice), "value": choice} for choice in choices]


def _by_label(by: str) -> str:
    return {data.BY_VERSION: "version", data.BY_ALL: "all versions"}.get(by, f"tag: {by}")
