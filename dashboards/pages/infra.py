"""Infra / GPU: utilization, memory, temperature, power and clocks per host and per GPU over
time, and host CPU and memory, from metric samples averaged per bucket by the database."""

from __future__ import annotations

from typing import Any

import dash
from dash import Dash, Input, Output, dcc, html

from dashboards import data, figures
from dashboards.components import (
    GRAPH_CONFIG,
    as_list,
    data_attributes,
    data_table,
    dropdown,
    empty_state,
    error_message,
    first,
    page_layout,
    param_id,
    value_options,
    window_picker,
)

PAGE = "infra"

dash.register_page(__name__, path="/infra", name="Infra / GPU", title="Infra · observe", order=50)


def layout(start: Any = None, end: Any = None, host: Any = None, **_other: Any) -> html.Div:
    hosts = as_list(host)
    params: dict[str, Any] = {"start": first(start), "end": first(end), "host": hosts}
    return page_layout(
        PAGE,
        params,
        title="Infra / GPU",
        subtitle="GPU and host metrics per host and device; the hover shows each bucket's peak.",
        pickers=[
            window_picker(PAGE, params["start"], params["end"]),
            dropdown(
                PAGE,
                "host",
                "Hosts",
                hosts,
                value_options(hosts),
                multi=True,
                placeholder="all hosts",
            ),
        ],
        body=[
            html.Div(id="infra-summary"),
            html.Div(id="infra-charts", className="chart-grid"),
        ],
    )


def register_callbacks(app: Dash, context: Any) -> None:
    @app.callback(
        Output("infra-status", "children"),
        Output("infra-summary", "children"),
        Output("infra-charts", "children"),
        Output(param_id(PAGE, "host"), "options"),
        Input(param_id(PAGE, "start"), "value"),
        Input(param_id(PAGE, "end"), "value"),
        Input(param_id(PAGE, "host"), "value"),
    )
    def show_infra(start: str | None, end: str | None, host: Any) -> tuple[Any, Any, Any, Any]:
        hosts = as_list(host)
        keep = value_options(hosts)
        try:
            window = data.resolve_window(start, end)
        except data.InputError as error:
            return error_message(str(error), "infra-error"), None, None, keep
        view = data.load_infra(context.sessions, window=window, hosts=hosts)
        options = value_options(sorted({*view.available_hosts, *hosts}))
        status = (
            f"{len(view.available_hosts)} hosts with samples · {window.describe()} · "
            f"{figures.duration_label(view.bucket_seconds)} buckets"
        )
        if view.frame.empty:
            return status, no_metrics(), None, options
        return status, summary_table(view), charts(view), options


def charts(view: data.InfraView) -> list[Any]:
    """A chart per well-known metric that has samples in the window."""
    graphs = []
    for chart in data.INFRA_CHARTS:
        frame = view.chart_frame(chart.name)
        if frame.empty:
            continue
        figure = figures.metric_figure(
            frame, chart, window_start=view.window.start, window_end=view.window.end
        )
        graphs.append(dcc.Graph(id=f"infra-chart-{chart.name}", figure=figure, config=GRAPH_CONFIG))
    return graphs


SUMMARY_COLUMNS = (
    ("host", "Host", "{}"),
    ("resource", "Device", "{}"),
    ("mean_utilization_pct", "Mean GPU util.", "{:.1f}%"),
    ("max_temperature_c", "Peak temp.", "{:.1f} °C"),
    ("min_sm_clock_mhz", "Lowest SM clock", "{:,.0f} MHz"),
    ("max_memory_used_mb", "Peak GPU memory", "{:,.0f} MB"),
    ("mean_cpu_utilization_pct", "Mean CPU util.", "{:.1f}%"),
)


def summary_table(view: data.InfraView) -> html.Table:
    """Per host and device, the numbers that single out a saturated or throttling GPU."""
    summary = data.summarize_resources(view)
    columns = [c for c in SUMMARY_COLUMNS if c[0] in summary.columns]
    rows = [
        html.Tr(
            [html.Td(_format(row[name], pattern)) for name, _, pattern in columns],
            **data_attributes(resource=f"{row['host']}/{row['resource']}"),
        )
        for _, row in summary.iterrows()
    ]
    titles = [title for _, title, _ in columns]
    return data_table(titles, rows, table_id="infra-summary-table")


def _format(value: Any, pattern: str) -> str:
    if value is None or (isinstance(value, float) and value != value):  # NaN: no such samples
        return "-"
    return pattern.format(value)


def no_metrics() -> html.Div:
    return empty_state(
        "No GPU or host metrics in this window",
        [
            "Send samples with ",
            html.Code('client.log_metrics(host="gpu-1", resource="gpu0", values={...})'),
            ", POST them to ",
            html.Code("/api/v1/metrics"),
            ", or load a file with ",
            html.Code("observe import metrics FILE"),
            ". Well-known names: gpu_utilization_pct, gpu_memory_used_mb, gpu_temperature_c, "
            "gpu_power_w, gpu_sm_clock_mhz, cpu_utilization_pct, memory_used_mb.",
        ],
        element_id="infra-empty",
    )
