"""Reports: the weekly reports (open each as its self-contained HTML, or its JSON) with how
their deliveries went, and the alerts sent about incidents.

The report files are served at ``/ui/reports/<week>/<model>.html`` (and ``.json``,
``summary.*``), the layout the directory channel writes, behind the UI's login like every page.
"""

from __future__ import annotations

from typing import Any

import dash
import orjson
from dash import Dash, Input, Output, html
from flask import Response, abort

from dashboards import data
from dashboards.components import (
    choice,
    data_table,
    empty_state,
    error_message,
    first,
    page_layout,
    param_id,
    value_options,
)
from dashboards.report import render_report_html, stem_for

PAGE = "reports"
FILE_TYPES = {"html": "text/html; charset=utf-8", "json": "application/json"}
STATUS_BADGE = {"sent": "ok", "pending": "warn", "failed": "breached"}
STATE_BADGE = {"opened": "breached", "resolved": "ok"}

dash.register_page(__name__, path="/reports", name="Reports", title="Reports · observe", order=90)


def layout(week: Any = None, model: Any = None, **_other: Any) -> html.Div:
    params = {"week": first(week), "model": first(model)}
    return page_layout(
        PAGE,
        params,
        title="Weekly reports",
        subtitle="A report per model and a summary across models for every ISO week, with the "
        "week before for comparison; each opens as one file that works offline.",
        # Cleared, a picker shows every week (model).
        pickers=[
            choice(PAGE, "week", "Week", params["week"], "every week"),
            choice(PAGE, "model", "Model", params["model"], "every model"),
        ],
        body=[
            html.Div(id="reports-table"),
            html.H3("Alerts"),
            html.Div(id="reports-alerts"),
        ],
    )


def register_callbacks(app: Dash, context: Any) -> None:
    @app.callback(
        Output("reports-status", "children"),
        Output("reports-table", "children"),
        Output("reports-alerts", "children"),
        Output(param_id(PAGE, "week"), "options"),
        Output(param_id(PAGE, "model"), "options"),
        Input(param_id(PAGE, "week"), "value"),
        Input(param_id(PAGE, "model"), "value"),
    )
    def show_reports(week: str | None, model: str | None) -> tuple[Any, ...]:
        try:
            view = data.load_reports(context.sessions, week=week, model=model)
        except data.InputError as error:
            return error_message(str(error), "reports-error"), None, None, [], []
        weeks = value_options(sorted({*view.weeks, *filter(None, [week])}))
        models = value_options(sorted({*view.models, *filter(None, [model])}))
        status = f"{len(view.reports)} reports · {len(view.alerts)} alerts"
        table = reports_table(view.reports) if view.reports else no_reports()
        alerts = (
            alerts_table(view.alerts) if view.alerts else html.P("No alerts.", className="muted")
        )
        return status, table, alerts, weeks[::-1], models

    app.server.add_url_rule(
        "/reports/<week>/<file_name>",
        endpoint="report-file",
        view_func=lambda week, file_name: serve_report_file(context, week, file_name),
    )


def serve_report_file(context: Any, week: str, file_name: str) -> Response:
    """A stored report as its self-contained HTML or its JSON."""
    stem, _, extension = file_name.rpartition(".")
    if extension not in FILE_TYPES or not stem:
        abort(404)
    report = data.load_report_file(context.sessions, week, stem)
    if report is None:
        abort(404)
    content = report.content or {}
    if extension == "json":
        body = orjson.dumps(content, option=orjson.OPT_INDENT_2)
    else:
        body = render_report_html(content).encode()
    return Response(body, mimetype=FILE_TYPES[extension].split(";")[0])


def file_href(week: str, model: str | None, extension: str) -> str:
    return f"/ui/reports/{week}/{stem_for(model)}.{extension}"


def reports_table(rows: list[data.ReportRow]) -> html.Table:
    return data_table(
        ("Week", "Report", "Written", "Needs attention", "Deliveries", "Open"),
        [_report_row(row) for row in rows],
        table_id="reports-list",
    )


def _report_row(row: data.ReportRow) -> html.Tr:
    report = row.report
    name = report.model or "All models (summary)"
    attention = (
        html.Span(f"{report.num_needs_attention}", className="badge badge-warn")
        if report.num_needs_attention
        else html.Span("none", className="muted")
    )
    links = [
        html.A("HTML", href=file_href(report.week, report.model, "html"), target="_blank"),
        " · ",
        html.A("JSON", href=file_href(report.week, report.model, "json"), target="_blank"),
    ]
    cells = [
        report.week,
        name,
        f"{report.created_at:%Y-%m-%d %H:%M} UTC",
        attention,
        deliveries_cell(row.deliveries),
        links,
    ]
    attributes: dict[str, Any] = {"data-report": f"{report.week}/{stem_for(report.model)}"}
    return html.Tr([html.Td(cell) for cell in cells], **attributes)


def deliveries_cell(deliveries: list[Any]) -> Any:
    """A badge per channel: sent, pending (with the attempts so far) or failed; the last
    error is the badge's tooltip."""
    if not deliveries:
        return html.Span("no channels", className="muted")
    badges: list[Any] = []
    for delivery in deliveries:
        text = f"{delivery.channel} {delivery.status}"
        if delivery.status != "sent" and delivery.attempts:
            plural = "s" if delivery.attempts > 1 else ""
            text += f" ({delivery.attempts} attempt{plural})"
        badges.append(
            html.Span(
                text,
                className=f"badge badge-{STATUS_BADGE.get(delivery.status, 'none')}",
                title=delivery.last_error or "",
            )
        )
        badges.append(" ")
    return badges


def alerts_table(rows: list[data.AlertRow]) -> html.Table:
    return data_table(
        ("Time", "State", "Kind", "Model", "Alert", "Deliveries", ""),
        [_alert_row(row) for row in rows],
        table_id="reports-alerts-list",
    )


def _alert_row(row: data.AlertRow) -> html.Tr:
    alert = row.alert
    link = alert.details.get("link")
    cells: list[Any] = [
        f"{alert.created_at:%Y-%m-%d %H:%M} UTC",
        html.Span(alert.state, className=f"badge badge-{STATE_BADGE.get(alert.state, 'none')}"),
        alert.kind.replace("_", " "),
        alert.model + (f" {alert.model_version}" if alert.model_version else ""),
        alert.summary,
        deliveries_cell(row.deliveries),
        html.A("triage", href=link, target="_blank") if link else "",
    ]
    return html.Tr([html.Td(cell) for cell in cells])


def no_reports() -> html.Div:
    return empty_state(
        "No weekly reports yet",
        [
            "observe serve writes them on the schedule in ",
            html.Code("OBSERVE_REPORT_CRON"),
            " (Mondays 06:00 UTC by default) for the week just ended; ",
            html.Code("observe report --week 2026-W47"),
            " writes one now.",
        ],
        element_id="reports-empty",
    )
