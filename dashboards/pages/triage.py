"""Triage: pick a model and a window (or click a detected regression), and walk the checklist:
the symptom, each check of isolate, data, infra and model with its verdict and a chart, then
the ranked causes with what to do, and links down to traces, profiler diffs and the other
pages over the same window."""

from __future__ import annotations

import datetime as dt
from typing import Any

import dash
from dash import Dash, Output, dcc, html

from dashboards import data, links
from dashboards.components import (
    baseline_picker,
    data_attributes,
    data_table,
    empty_state,
    graph,
    model_picker,
    page_layout,
    register_model_choices,
    register_model_view,
    url_values,
    verdict_badge,
    window_picker,
)
from dashboards.data import triage as triage_data
from dashboards.figures import triage as triage_figures

PAGE = "triage"
DEFAULT_START = "-1h"
PARAMS = ("model", "start", "end", "baseline_start", "baseline_end")
CAUSE_COLUMNS = ("#", "Cause", "Score", "Scope", "What we found", "What to do", "Look at")

dash.register_page(__name__, path="/triage", name="Triage", title="Triage · observe", order=10)


def layout(**url_params: Any) -> html.Div:
    params = url_values(url_params, PARAMS)
    return page_layout(
        PAGE,
        params,
        title="Triage",
        subtitle="Compare a window with its baseline (by default the same length just before) "
        "and walk the checklist: isolate, data, infra, model; then the causes, ranked, with "
        "what to do.",
        pickers=[
            model_picker(PAGE, params["model"]),
            window_picker(PAGE, params["start"], params["end"], default_start=DEFAULT_START),
            baseline_picker(PAGE, params["baseline_start"], params["baseline_end"]),
        ],
        before_body=[
            html.Div(
                [html.H3("Detected regressions"), html.Div(id="triage-regressions")],
                className="panel",
            ),
        ],
        body=[
            html.Div(id="triage-symptom"),
            html.Div(id="triage-steps"),
            html.Div(id="triage-causes"),
            html.Div(id="triage-links"),
        ],
    )


def register_callbacks(app: Dash, context: Any) -> None:
    register_model_choices(
        app,
        PAGE,
        context,
        outputs=[Output("triage-regressions", "children")],
        choices=lambda model: [regressions_panel(context.sessions, model)],
    )
    register_model_view(
        app,
        PAGE,
        PARAMS,
        [
            Output("triage-symptom", "children"),
            Output("triage-steps", "children"),
            Output("triage-causes", "children"),
            Output("triage-links", "children"),
        ],
        lambda params: triage_outputs(_load(context, params)),
        blank=(None, None, None, None),
    )


def _load(context: Any, params: dict[str, str | None]) -> triage_data.TriageView:
    windows = triage_data.resolve_windows(
        params["start"], params["end"], params["baseline_start"], params["baseline_end"]
    )
    return triage_data.load_triage(
        context.sessions,
        model=str(params["model"]),
        windows=windows,
        rollup_tags=context.settings.rollup_tags,
    )


def triage_outputs(view: triage_data.TriageView) -> tuple[Any, ...]:
    return (
        _status(view),
        symptom_panel(view),
        steps_panel(view),
        causes_panel(view),
        links_panel(view),
    )


def _status(view: triage_data.TriageView) -> str:
    windows = view.windows
    failed = sum(check.status == "fail" for check in view.diagnosis.steps)
    return (
        f"{view.model} · window {data.Window(windows.start, windows.end).describe()} against "
        f"baseline {data.Window(windows.baseline_start, windows.baseline_end).describe()} · "
        f"{failed} of {len(view.diagnosis.steps)} checks failed · "
        f"{len(view.diagnosis.causes)} causes"
    )


# --- regressions -------------------------------------------------------------------------------


def regressions_panel(sessions: Any, model: str | None) -> Any:
    """The chosen model's detected regressions (nothing without a model)."""
    if not model:
        return None
    regressions = triage_data.load_regressions(sessions, model)
    return regressions_list(regressions, now=dt.datetime.now(dt.UTC))


def regressions_list(regressions: list[triage_data.Regression], *, now: dt.datetime) -> Any:
    """The model's detected regressions; each opens the triage of its first hour."""
    if not regressions:
        return html.P(
            "No latency regression detected for this model. Pick a window above, or let the "
            "hourly latency analysis (`observe analyze latency`) find one.",
            className="muted",
        )
    items = []
    for regression in regressions:
        window = regression.window(now=now)
        kind = "breached" if regression.status == "open" else "ok"
        items.append(
            html.Li(
                [
                    verdict_badge(data.Verdict(kind, regression.status)),
                    html.Span(f" {regression.onset_at:%Y-%m-%d %H:%M} UTC ", className="muted"),
                    dcc.Link(
                        regression.summary,
                        href=links.triage_url(regression.model, window.start, window.end),
                        className="regression-link",
                    ),
                ],
                **data_attributes(finding=str(regression.finding_id)),
            )
        )
    return html.Ul(items, className="regression-list", id="triage-regression-list")


# --- the diagnosis -----------------------------------------------------------------------------


def symptom_panel(view: triage_data.TriageView) -> html.Div:
    diagnosis = view.diagnosis
    symptom = diagnosis.symptom
    badge = data.Verdict.breached_if(symptom.is_regression, "regression", "no regression")
    top = diagnosis.causes[0] if diagnosis.causes else None
    top_line = (
        html.P(
            [html.Strong("Top cause: "), top.summary, html.Br(), html.Strong("Do: "), top.action],
            id="triage-top-cause",
        )
        if top
        else html.P("Nothing stands out: no cause scores high enough.", id="triage-top-cause")
    )
    onset = view.inputs.onset_at
    return html.Div(
        [
            html.H3(["Symptom ", verdict_badge(badge, badge_id="triage-symptom-badge")]),
            html.P(triage_data.describe_symptom(diagnosis), id="triage-symptom-text"),
            html.P(f"Onset: {onset:%Y-%m-%d %H:%M} UTC", className="muted") if onset else None,
            top_line,
        ],
        className="panel symptom-panel",
    )


def steps_panel(view: triage_data.TriageView) -> html.Div:
    """The checks of each step, in checklist order."""
    sections = []
    for step in triage_data.STEPS:
        checks = view.checks_of(step)
        if not checks:
            continue
        sections.append(
            html.Section(
                [
                    html.H3(triage_data.STEP_TITLES[step]),
                    html.Div([check_card(check, view) for check in checks], className="check-grid"),
                ],
                className="step",
                id=f"triage-step-{step}",
            )
        )
    return html.Div(sections, id="triage-checklist")


def check_card(check: Any, view: triage_data.TriageView) -> html.Div:
    figure = triage_figures.check_figure(check, view)
    chart = graph(f"triage-chart-{check.check}", figure) if figure is not None else None
    return html.Div(
        [
            html.Div(
                [
                    verdict_badge(triage_data.step_verdict(check)),
                    html.Strong(check.check.replace("_", " "), className="check-name"),
                ],
                className="check-head",
            ),
            html.P(check.summary, className="check-summary"),
            chart,
        ],
        className=f"check-card check-{check.status}",
        id=f"triage-check-{check.check}",
        **data_attributes(status=check.status),
    )


def causes_panel(view: triage_data.TriageView) -> html.Div:
    causes = view.diagnosis.causes
    if not causes:
        return html.Div(
            [
                html.H3("Causes"),
                empty_state(
                    "Nothing stands out",
                    "No check found a cause that scores 0.3 or more. Widen the window, pick "
                    "another baseline, or look at the traces of the window.",
                ),
            ]
        )
    rows = [_cause_row(rank, cause, view) for rank, cause in enumerate(causes, start=1)]
    return html.Div(
        [
            html.H3("Causes, most likely first"),
            data_table(CAUSE_COLUMNS, rows, table_id="triage-cause-table"),
        ]
    )


def _cause_row(rank: int, cause: Any, view: triage_data.TriageView) -> html.Tr:
    score = html.Div(
        [
            html.Div(className="score-bar", style={"width": f"{100 * cause.score:.0f}%"}),
            html.Span(f"{cause.score:.2f}"),
        ],
        className="score",
    )
    look = [
        dcc.Link(text, href=href, className="cause-link")
        for text, href in links.for_cause(cause, view)
    ]
    cells = [
        str(rank),
        cause.kind.replace("_", " "),
        score,
        ", ".join(f"{key} {value}" for key, value in cause.scope.items()),
        cause.summary,
        html.Strong(cause.action),
        html.Div(look, className="link-list"),
    ]
    return html.Tr(
        [html.Td(cell) for cell in cells],
        className="top-cause" if rank == 1 else None,
        **data_attributes(kind=cause.kind),
    )


def links_panel(view: triage_data.TriageView) -> html.Div:
    """The window's slowest traces (each opens its span waterfall) and the other pages."""
    traces = [
        html.Li(
            [
                dcc.Link(
                    trace["trace_id"],
                    href=links.traces_url(
                        view.model, view.windows.start, view.windows.end, trace=trace["trace_id"]
                    ),
                    className="trace-link",
                ),
                html.Span(
                    f" {trace['root_name'] or ''} · {trace['duration_ms']:,.1f} ms · "
                    f"{trace['num_spans']} spans",
                    className="muted",
                ),
            ]
        )
        for trace in view.slow_traces
    ]
    pages = [
        html.Li(dcc.Link(text, href=href, className="page-link"))
        for text, href in links.for_diagnosis(view)
    ]
    return html.Div(
        [
            html.Div(
                [
                    html.H3("Slowest traces of the window"),
                    html.Ul(traces, id="triage-slow-traces")
                    if traces
                    else html.P("No traces of this model in the window.", className="muted"),
                ]
            ),
            html.Div([html.H3("Look further"), html.Ul(pages, id="triage-page-links")]),
        ],
        className="panel link-columns",
    )
