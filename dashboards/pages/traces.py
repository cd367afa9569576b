"""Traces: the slowest traces of a model in a window; a trace's span waterfall with each
span's attributes (hover, or click for all of them); and span-duration percentiles per span
name over time, from the span rollups."""

from __future__ import annotations

import json
from typing import Any

import dash
from dash import Dash, Input, Output, State, dcc, html

from dashboards import data, links
from dashboards.components import (
    data_attributes,
    data_table,
    empty_state,
    graph,
    graph_style,
    model_picker,
    page_layout,
    param_id,
    placeholder_graph,
    radio,
    register_model_choices,
    register_model_view,
    url_values,
    value_options,
    window_picker,
)
from dashboards.data import traces as trace_data
from dashboards.figures import duration_label, empty_figure
from dashboards.figures import traces as trace_figures
from dashboards.formats import format_ms

PAGE = "traces"
PARAMS = ("model", "start", "end", "trace", "percentile")
TABLE_COLUMNS = ("Trace", "Root span", "Service", "Start (UTC)", "Duration", "Spans", "Errors")
PERCENTILES = ("p50", "p95")

dash.register_page(__name__, path="/traces", name="Traces", title="Traces · observe", order=60)


def layout(**url_params: Any) -> html.Div:
    params = url_values(url_params, PARAMS)
    percentile = params["percentile"] or "p95"
    params["percentile"] = percentile
    return page_layout(
        PAGE,
        params,
        title="Traces",
        subtitle="The slowest traces of a model; pick one to see its spans as a waterfall "
        "(hover a span for its attributes, click it for all of them).",
        pickers=[
            model_picker(PAGE, params["model"]),
            window_picker(PAGE, params["start"], params["end"]),
            radio(PAGE, "percentile", "Span percentile", percentile, value_options(PERCENTILES)),
            dcc.Input(id=param_id(PAGE, "trace"), value=params["trace"] or "", type="hidden"),
        ],
        body=[
            html.Div(id="traces-table", className="table-scroll"),
            html.Div(id="traces-selected"),
            placeholder_graph("traces-waterfall"),
            dcc.Store(id="traces-spans"),
            html.Div(
                "Click a span to see all its attributes.",
                id="traces-span-details",
                className="panel span-details",
            ),
            html.Div(id="traces-span-percentiles"),
        ],
    )


def register_callbacks(app: Dash, context: Any) -> None:
    register_model_choices(app, PAGE, context)
    register_model_view(
        app,
        PAGE,
        PARAMS,
        [
            Output("traces-table", "children"),
            Output("traces-selected", "children"),
            Output("traces-waterfall", "figure"),
            Output("traces-waterfall", "style"),
            Output("traces-spans", "data"),
            Output("traces-span-percentiles", "children"),
        ],
        lambda params: traces_outputs(_load(context, params), params),
        blank=(None, None, empty_figure(""), {}, None, None),
    )

    @app.callback(
        Output("traces-span-details", "children"),
        Input("traces-waterfall", "clickData"),
        State("traces-spans", "data"),
        prevent_initial_call=True,
    )
    def show_span(click: dict[str, Any] | None, spans: list[dict[str, Any]] | None) -> Any:
        row = _clicked_row(click)
        if row is None or not spans or row >= len(spans):
            return dash.no_update
        return span_details(spans[row])


def _load(context: Any, params: dict[str, str | None]) -> trace_data.TracesView:
    return trace_data.load_traces(
        context.sessions,
        model=str(params["model"]),
        window=data.resolve_window(params["start"], params["end"]),
        trace_id=trace_data.parse_trace_id(params["trace"]),
    )


def traces_outputs(view: trace_data.TracesView, params: dict[str, str | None]) -> tuple[Any, ...]:
    selected = view.selected
    status = (
        f"{view.model} · {view.window.describe()} · {len(view.traces)} slowest traces"
        if view.traces
        else f"{view.model} · {view.window.describe()} · no traces"
    )
    percentile = params["percentile"] or "p95"
    names = trace_data.busiest_span_names(view.span_series)
    percentiles_figure = trace_figures.span_percentiles_figure(
        trace_data.span_series_frame(view.span_series, names),
        percentile_column=percentile,
        window_start=view.span_series.start,
        window_end=view.span_series.end,
        bucket_label=duration_label(view.span_series.bucket_seconds),
    )
    percentiles = graph("traces-span-percentiles-chart", percentiles_figure)
    if selected is None:
        nothing = empty_figure("No trace to show")
        return status, no_traces(), None, nothing, graph_style(nothing), None, percentiles
    spans = trace_data.span_records(selected)
    waterfall = trace_figures.waterfall_figure(spans, title=f"Trace {selected.trace_id}")
    return (
        status,
        traces_table(view, params),
        selected_line(view),
        waterfall,
        graph_style(waterfall),
        json.loads(json.dumps(spans, default=str)),
        percentiles,
    )


def traces_table(view: trace_data.TracesView, params: dict[str, str | None]) -> html.Table:
    current = view.selected.trace_id if view.selected else None
    rows = []
    for trace in view.traces:
        href = links.traces_url(view.model, params["start"], params["end"], trace=trace["trace_id"])
        cells = [
            dcc.Link(trace["trace_id"], href=href, className="trace-link"),
            trace["root_name"] or "-",
            trace["service_name"] or "-",
            f"{trace['start_at']:%Y-%m-%d %H:%M:%S}",
            format_ms(trace["duration_ms"]),
            f"{trace['num_spans']:,}",
            f"{trace['num_errors']:,}",
        ]
        rows.append(
            html.Tr(
                [html.Td(cell) for cell in cells],
                className="selected" if trace["trace_id"] == current else None,
                **data_attributes(trace=trace["trace_id"]),
            )
        )
    return data_table(TABLE_COLUMNS, rows, table_id="traces-list")


def selected_line(view: trace_data.TracesView) -> html.P:
    trace = view.selected
    assert trace is not None
    which = "The slowest trace" if view.is_default else "Trace"
    records = ", ".join(str(r.get("request_id")) for r in trace.records[:3])
    return html.P(
        [
            f"{which} {trace.trace_id}: {trace.root_name or '-'} on {trace.service_name or '-'}, ",
            f"{format_ms(trace.duration_ms)}, {trace.num_spans} spans, {trace.num_errors} errors",
            f"; inference records {records}" if records else "",
        ],
        id="traces-selected-line",
    )


def no_traces() -> html.Div:
    return empty_state(
        "No traces of this model in the window",
        [
            "Point an OpenTelemetry exporter at ",
            html.Code("/v1/traces"),
            " (OTLP/HTTP) with the model's name in a span attribute (model.name), or load a "
            "file with ",
            html.Code("observe import spans FILE"),
            ". Records that carry a trace_id link to their trace.",
        ],
        element_id="traces-empty",
    )


def _clicked_row(click: dict[str, Any] | None) -> int | None:
    points = (click or {}).get("points") or []
    if not points or not points[0].get("customdata"):
        return None
    return int(points[0]["customdata"][0])


def span_details(span: dict[str, Any]) -> html.Table:
    """Every attribute of a span, its resource's too."""
    rows = [
        ("name", span.get("name")),
        ("span id", span.get("span_id")),
        ("parent", span.get("parent_span_id") or "-"),
        ("service", span.get("service_name")),
        ("kind", span.get("kind")),
        ("duration", format_ms(span.get("duration_ms"))),
        ("status", span.get("status_code")),
    ]
    rows += [(f"attribute {k}", v) for k, v in (span.get("attributes") or {}).items()]
    rows += [(f"resource {k}", v) for k, v in (span.get("resource_attributes") or {}).items()]
    return html.Table(
        html.Tbody([html.Tr([html.Th(name), html.Td(str(value))]) for name, value in rows]),
        className="data-table",
        id="traces-span-table",
    )
