"""Latency: percentile series per version or tag value from the rollups, with deploys and other
events as markers and stored latency regressions as change points."""

from __future__ import annotations

import datetime as dt
from typing import Any

import dash
from dash import Dash, Input, Output, dcc, html, no_update

from dashboards import data, figures, links
from dashboards.components import (
    GRAPH_CONFIG,
    controls,
    dropdown,
    empty_state,
    error_message,
    first,
    loading,
    model_picker,
    no_data_yet,
    page_header,
    param_id,
    radio,
    rendered_params,
    status_line,
    window_picker,
    zoomed_window,
)
from dashboards.data import triage as triage_data

PAGE = "latency"

dash.register_page(__name__, path="/latency", name="Latency", title="Latency · observe", order=20)


def layout(
    model: Any = None,
    start: Any = None,
    end: Any = None,
    by: Any = None,
    percentile: Any = None,
    **_other: Any,
) -> html.Div:
    by_value = first(by) or data.BY_VERSION
    percentile_value = first(percentile) or f"{data.DEFAULT_PERCENTILE:g}"
    params = {
        "model": first(model),
        "start": first(start),
        "end": first(end),
        "by": by_value,
        "percentile": percentile_value,
    }
    return html.Div(
        [
            rendered_params(PAGE, params),
            page_header(
                "Latency",
                "Percentiles per time bucket from the rollups, split by version or by a tag; "
                "dotted lines are events, red lines are detected change points. Drag across the "
                "chart to zoom the window in.",
            ),
            controls(
                model_picker(PAGE, params["model"]),
                window_picker(PAGE, params["start"], params["end"]),
                dropdown(
                    PAGE,
                    "by",
                    "Split by",
                    by_value,
                    [{"label": _by_label(by_value), "value": by_value}],
                ),
                radio(
                    PAGE,
                    "percentile",
                    "Percentile",
                    percentile_value,
                    _percentile_options(percentile_value),
                ),
            ),
            loading(
                PAGE,
                "body",
                html.Div(
                    [
                        status_line(PAGE),
                        dcc.Graph(
                            id="latency-chart",
                            config=GRAPH_CONFIG,
                            figure=figures.empty_figure("Loading…"),
                        ),
                        dcc.Graph(
                            id="latency-traffic-chart",
                            config=GRAPH_CONFIG,
                            figure=figures.empty_figure("Loading…"),
                        ),
                        html.Div(id="latency-markers"),
                    ]
                ),
            ),
        ],
        className="page page-latency",
    )


def register_callbacks(app: Dash, context: Any) -> None:
    @app.callback(
        Output(param_id(PAGE, "model"), "options"),
        Output(param_id(PAGE, "model"), "value"),
        Output(param_id(PAGE, "by"), "options"),
        Input(param_id(PAGE, "model"), "id"),
        Input(param_id(PAGE, "model"), "value"),
    )
    def fill_choices(_id: Any, model: str | None) -> tuple[Any, Any, Any]:
        names = data.list_model_names(context.sessions)
        by_options = [
            {"label": _by_label(choice), "value": choice}
            for choice in data.group_choices(context.settings.rollup_tags)
        ]
        chosen = model if model else (names[0] if names else None)
        return (
            [{"label": name, "value": name} for name in names],
            chosen if chosen != model else no_update,
            by_options,
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

    @app.callback(
        Output("latency-status", "children"),
        Output("latency-chart", "figure"),
        Output("latency-traffic-chart", "figure"),
        Output("latency-markers", "children"),
        Input(param_id(PAGE, "model"), "value"),
        Input(param_id(PAGE, "start"), "value"),
        Input(param_id(PAGE, "end"), "value"),
        Input(param_id(PAGE, "by"), "value"),
        Input(param_id(PAGE, "percentile"), "value"),
    )
    def show_latency(
        model: str | None,
        start: str | None,
        end: str | None,
        by: str | None,
        percentile: str | None,
    ) -> tuple[Any, Any, Any, Any]:
        blank = figures.empty_figure("")
        if not model:
            return no_data_yet("latency-empty"), blank, blank, None
        try:
            view = data.load_latency(
                context.sessions,
                model=model,
                window=data.resolve_window(start, end),
                by=by or data.BY_VERSION,
                percentile=data.parse_percentile(percentile),
                rollup_tags=context.settings.rollup_tags,
            )
        except data.InputError as error:
            return error_message(str(error), "latency-error"), blank, blank, None
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
    header = html.Thead(html.Tr([html.Th(name) for name in ("Time (UTC)", "What", "Version", "")]))
    body = html.Tbody(
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
        ]
    )
    return html.Div(
        [html.H3("Events and change points"), html.Table([header, body], className="data-table")],
        id="latency-marker-table",
    )


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


def _by_label(by: str) -> str:
    return {data.BY_VERSION: "version", data.BY_ALL: "all versions"}.get(by, f"tag: {by}")
