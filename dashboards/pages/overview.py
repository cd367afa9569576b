"""Overview: every model with traffic, error rate, p50/p95/p99 against its SLO, drift status
and open findings, over a window."""

from __future__ import annotations

import datetime as dt
from typing import Any

import dash
from dash import Dash, Input, Output, dcc, html

from dashboards import data, figures, links
from dashboards.components import (
    data_table,
    error_message,
    first,
    no_data_yet,
    page_layout,
    param_id,
    placeholder_graph,
    query_string,
    verdict_badge,
    window_picker,
)
from dashboards.data import triage as triage_data
from dashboards.formats import format_count, format_ms, format_rate

PAGE = "overview"
COLUMNS = (
    "Model",
    "Versions",
    "Requests",
    "Error rate",
    "p50",
    "p95",
    "p99",
    "SLO",
    "SLO status",
    "Drift",
    "Open regressions",
    "Open findings",
)

dash.register_page(__name__, path="/", name="Overview", title="Overview · observe", order=0)


def layout(start: Any = None, end: Any = None, **_other: Any) -> html.Div:
    params = {"start": first(start), "end": first(end)}
    return page_layout(
        PAGE,
        params,
        title="Models",
        subtitle="Traffic, errors and latency of every model against its SLO, with the open "
        "findings of the analyses.",
        pickers=[window_picker(PAGE, params["start"], params["end"])],
        body=[html.Div(id="overview-table"), placeholder_graph("overview-slo-chart")],
    )


def register_callbacks(app: Dash, context: Any) -> None:
    @app.callback(
        Output("overview-status", "children"),
        Output("overview-table", "children"),
        Output("overview-slo-chart", "figure"),
        Input(param_id(PAGE, "start"), "value"),
        Input(param_id(PAGE, "end"), "value"),
    )
    def show_overview(start: str | None, end: str | None) -> tuple[Any, Any, Any]:
        try:
            window = data.resolve_window(start, end)
        except data.InputError as error:
            return error_message(str(error), "overview-error"), None, figures.empty_figure("")
        overview = data.load_overview(context.sessions, window)
        status = f"{len(overview.rows)} models · {window.describe()}"
        if not overview.rows:
            return status, no_data_yet("overview-empty"), figures.empty_figure("No models yet")
        return (
            status,
            overview_table(overview, start=start, end=end),
            figures.slo_figure(overview.rows),
        )


def overview_table(overview: data.Overview, *, start: str | None, end: str | None) -> html.Table:
    """One row per model; the model name links to its latency page over the same window."""
    rows = [_row(row, start=start, end=end) for row in overview.rows]
    return data_table(COLUMNS, rows, table_id="overview-models")


def _regressions_cell(row: data.ModelRow) -> Any:
    """The open regressions as a badge that opens the triage of the latest one."""
    if not row.num_open_regressions:
        return html.Span("none", className="muted")
    badge = verdict_badge(data.Verdict("breached", f"{row.num_open_regressions} open"))
    if row.latest_regression is None:
        return badge
    regression = triage_data.regression_of(row.latest_regression)
    window = regression.window(now=dt.datetime.now(dt.UTC))
    return dcc.Link(
        [badge, html.Span(" diagnose →", className="triage-link-text")],
        href=links.triage_url(row.model.name, window.start, window.end),
        className="triage-link",
        title=regression.summary,
    )


def _row(row: data.ModelRow, *, start: str | None, end: str | None) -> html.Tr:
    model = row.model
    href = "/ui/latency" + query_string([("model", model.name), ("start", start), ("end", end)])
    regressions = _regressions_cell(row)
    findings = (
        ", ".join(f"{kind} ({count})" for kind, count in row.open_findings.items())
        if row.open_findings
        else html.Span("none", className="muted")
    )
    cells: list[Any] = [
        dcc.Link(model.name, href=href, className="model-link"),
        ", ".join(v.model_version for v in model.versions if v.num_requests) or "-",
        format_count(model.num_requests),
        format_rate(model.error_rate),
        format_ms(model.p50),
        format_ms(model.p95),
        format_ms(model.p99),
        data.describe_slo(model.slo),
        verdict_badge(row.slo),
        verdict_badge(row.drift),
        regressions,
        findings,
    ]
    attributes: dict[str, Any] = {"data-model": model.name}
    return html.Tr(
        [html.Td(cell, className=f"col-{i}") for i, cell in enumerate(cells)], **attributes
    )
