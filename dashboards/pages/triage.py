"""Triage: pick a model and a window (or click a detected regression), and walk the checklist:
the symptom, each check of isolate, data, infra and model with its verdict and a chart, then
the ranked causes with what to do, and links down to traces, profiler diffs and the other
pages over the same window."""

from __future__ import annotations

import datetime as dt
from typing import Any

import dash
from dash import Dash, Input, Output, dcc, html

from dashboards import data, links
from dashboards.components import (
    baseline_picker,
    controls,
    data_attributes,
    empty_state,
    error_message,
    first,
    graph,
    loading,
    model_options,
    model_picker,
    no_data_yet,
    page_header,
    param_id,
    rendered_params,
    status_line,
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


def layout(
    model: Any = None,
    start: Any = None,
    end: Any = None,
    baseline_start: Any = None,
    baseline_end: Any = None,
    **_other: Any,
) -> html.Div:
    values = (model, start, end, baseline_start, baseline_end)
    params = {name: first(value) for name, value in zip(PARAMS, values, strict=True)}
    return html.Div(
        [
            rendered_params(PAGE, params),
            page_header(
                "Triage",
                "Compare a window with its baseline (by default the same length just before) "
                "and walk the checklist: isolate, data, infra, model; then the causes, ranked, "
                "with what to do.",
            ),
            controls(
                model_picker(PAGE, params["model"]),
                window_picker(PAGE, params["start"], params["end"], default_start=DEFAULT_START),
                baseline_picker(PAGE, params["baseline_start"], params["baseline_end"]),
            ),
            html.Div(
                [html.H3("Detected regressions"), html.Div(id="triage-regressions")],
                className="panel",
            ),
            loading(
                PAGE,
                "body",
                html.Div(
                    [
                        status_line(PAGE),
                        html.Div(id="triage-symptom"),
                        html.Div(id="triage-steps"),
                        html.Div(id="triage-causes"),
                        html.Div(id="triage-links"),
                    ]
                ),
            ),
        ],
        className="page page-triage",
    )


def register_callbacks(app: Dash, context: Any) -> None:
    @app.callback(
        Output(param_id(PAGE, "model"), "options"),
        Output(param_id(PAGE, "model"), "value"),
        Output("triage-regressions", "children"),
        Input(param_id(PAGE, "model"), "id"),
        Input(param_id(PAGE, "model"), "value"),
    )
    def fill_models(_id: Any, model: str | None) -> tuple[Any, Any, Any]:
        """The model choices, and the chosen model's detected regressions."""
        options, value = model_options(data.list_model_names(context.sessions), model)
        chosen = model or (options[0]["value"] if options else None)
        if not chosen:
            return options, value, None
        regressions = triage_data.load_regressions(context.sessions, chosen)
        return options, value, regressions_list(regressions, now=dt.datetime.now(dt.UTC))

    @app.callback(
        Output("triage-status", "children"),
        Output("triage-symptom", "children"),
        Output("triage-steps", "children"),
        Output("triage-causes", "children"),
        Output("triage-links", "children"),
        *[Input(param_id(PAGE, name), "value") for name in PARAMS],
    )
    def show_triage(
        model: str | None,
        start: str | None,
        end: str | None,
        baseline_start: str | None,
        baseline_end: str | None,
    ) -> tuple[Any, Any, Any, Any, Any]:
        if not model:
            return no_data_yet("triage-empty"), None, None, None, None
        try:
            windows = triage_data.resolve_windows(start, end, baseline_start, baseline_end)
            view = triage_data.load_triage(
                context.sessions,
                model=model,
                windows=windows,
                rollup_tags=context.settings.rollup_tags,
            )
        except data.InputError as error:
            return error_message(str(error), "triage-error"), None, None, None, None
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
    badge = data.Verdict(
        "breached" if symptom.is_regression else "ok",
        "regression" if symptom.is_regression else "no regression",
    )
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
    header = html.Thead(html.Tr([html.Th(name) for name in CAUSE_COLUMNS]))
    rows = [_cause_row(rank, cause, view) for rank, cause in enumerate(causes, start=1)]
    return html.Div(
        [
            html.H3("Causes, most likely first"),
            html.Table([header, html.Tbody(rows)], className="data-table", id="triage-cause-table"),
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
