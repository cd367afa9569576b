"""Profiler: a model's PyTorch profiler traces; one trace's top operators by self time (by
category) and a profiler step's timeline; and the operator diff of two traces, version against
version, ranked by the time the target adds."""

from __future__ import annotations

from typing import Any

import dash
from dash import Dash, Input, Output, dcc, html

from dashboards import data, links
from dashboards.components import (
    as_list,
    choice,
    controls,
    data_attributes,
    empty_state,
    error_message,
    first,
    format_count,
    graph,
    loading,
    model_options,
    model_picker,
    no_data_yet,
    page_header,
    param_id,
    rendered_params,
    status_line,
)
from dashboards.data import profiler as profiler_data
from dashboards.figures import empty_figure
from dashboards.figures import profiler as profiler_figures

PAGE = "profiler"
PARAMS = ("model", "profile", "category", "step", "base", "target")
PROFILE_COLUMNS = ("Trace", "Version", "Host", "Captured (UTC)", "Events", "Operators", "Steps")
DIFF_COLUMNS = ("Operator", "Category", "Status", "Base (ms)", "Target (ms)", "Added (ms)")
NUM_DIFF_ROWS = 10

dash.register_page(
    __name__, path="/profiler", name="Profiler", title="Profiler · observe", order=70
)


def layout(**url_params: Any) -> html.Div:
    params: dict[str, Any] = {name: first(url_params.get(name)) for name in PARAMS}
    params["category"] = as_list(url_params.get("category"))
    return html.Div(
        [
            rendered_params(PAGE, params),
            page_header(
                "Profiler",
                "PyTorch profiler traces of a model: where one trace spends its time, what a "
                "step looks like, and which operators another version made slower.",
            ),
            controls(
                model_picker(PAGE, params["model"]),
                choice(PAGE, "profile", "Trace", params["profile"], "newest"),
                html.Div(
                    [
                        html.Span("Categories", className="control-label"),
                        dcc.Dropdown(
                            id=param_id(PAGE, "category"),
                            value=params["category"],
                            options=[{"label": c, "value": c} for c in params["category"]],
                            multi=True,
                            placeholder="all",
                            className="dropdown",
                        ),
                    ],
                    className="control",
                ),
                choice(PAGE, "step", "Step", params["step"], "first"),
                choice(PAGE, "base", "Diff base", params["base"], "another version"),
                choice(PAGE, "target", "Diff target", params["target"], "newest"),
            ),
            loading(
                PAGE,
                "body",
                html.Div(
                    [
                        status_line(PAGE),
                        html.Div(id="profiler-profiles"),
                        html.Div(id="profiler-operators"),
                        html.Div(id="profiler-diff"),
                        html.Div(id="profiler-timeline"),
                    ]
                ),
            ),
        ],
        className="page page-profiler",
    )


def register_callbacks(app: Dash, context: Any) -> None:
    @app.callback(
        Output(param_id(PAGE, "model"), "options"),
        Output(param_id(PAGE, "model"), "value"),
        Input(param_id(PAGE, "model"), "id"),
        Input(param_id(PAGE, "model"), "value"),
    )
    def fill_models(_id: Any, model: str | None) -> tuple[Any, Any]:
        return model_options(data.list_model_names(context.sessions), model)

    @app.callback(
        Output("profiler-status", "children"),
        Output("profiler-profiles", "children"),
        Output("profiler-operators", "children"),
        Output("profiler-diff", "children"),
        Output("profiler-timeline", "children"),
        Output(param_id(PAGE, "profile"), "options"),
        Output(param_id(PAGE, "category"), "options"),
        Output(param_id(PAGE, "step"), "options"),
        Output(param_id(PAGE, "base"), "options"),
        Output(param_id(PAGE, "target"), "options"),
        *[Input(param_id(PAGE, name), "value") for name in PARAMS],
    )
    def show_profiler(*values: Any) -> tuple[Any, ...]:
        params = dict(zip(PARAMS, values, strict=True))
        nothing: tuple[Any, ...] = (None, None, None, None, [], [], [], [], [])
        if not params["model"]:
            return no_data_yet("profiler-empty"), *nothing
        try:
            view = profiler_data.load_profiler(
                context.sessions,
                model=str(params["model"]),
                profile_id=profiler_data.parse_profile_id(params["profile"], "profile"),
                base_id=profiler_data.parse_profile_id(params["base"], "base"),
                target_id=profiler_data.parse_profile_id(params["target"], "target"),
                categories=as_list(params["category"]),
                step=profiler_data.parse_step(params["step"]),
            )
        except data.InputError as error:
            return error_message(str(error), "profiler-error"), *nothing
        if view.profile is None:
            return f"{view.model} · no profiler traces", no_profiles(), *nothing[1:]
        return profiler_outputs(view, as_list(params["category"]))


def profiler_outputs(view: profiler_data.ProfilerView, categories: list[str]) -> tuple[Any, ...]:
    profile = view.profile
    assert profile is not None
    profile_options = [
        {"label": profiler_data.describe_profile(p), "value": str(p.id)} for p in view.profiles
    ]
    which = ", ".join(categories) if categories else "all operator categories"
    operators = profiler_figures.operators_figure(
        view.operators,
        title=f"Top operators of {profiler_data.describe_profile(profile)} by self time ({which})",
    )
    step_label = f"step {view.step}" if view.step is not None else "the whole trace"
    timeline = (
        profiler_figures.timeline_figure(view.timeline, title=f"Timeline of {step_label}")
        if view.timeline is not None
        else empty_figure("No timeline")
    )
    status = (
        f"{view.model} · {len(view.profiles)} profiler traces · showing "
        f"{profiler_data.describe_profile(profile)}"
    )
    return (
        status,
        profiles_table(view),
        graph("profiler-operators-chart", operators),
        diff_panel(view),
        graph("profiler-timeline-chart", timeline),
        profile_options,
        [{"label": c, "value": c} for c in view.categories],
        [{"label": f"step {s.step}", "value": str(s.step)} for s in view.steps],
        profile_options,
        profile_options,
    )


def profiles_table(view: profiler_data.ProfilerView) -> html.Table:
    current = view.profile.id if view.profile else None
    header = html.Thead(html.Tr([html.Th(name) for name in PROFILE_COLUMNS]))
    rows = [
        html.Tr(
            [
                html.Td(
                    dcc.Link(
                        f"#{p.id}",
                        href=links.profiler_url(view.model, profile=p.id),
                        className="profile-link",
                    )
                ),
                html.Td(p.model_version),
                html.Td(p.host),
                html.Td(f"{p.captured_at:%Y-%m-%d %H:%M}"),
                html.Td(format_count(p.num_events)),
                html.Td(format_count(p.num_operators)),
                html.Td(format_count(p.num_steps)),
            ],
            className="selected" if p.id == current else None,
            **data_attributes(profile=str(p.id)),
        )
        for p in view.profiles
    ]
    return html.Table([header, html.Tbody(rows)], className="data-table", id="profiler-list")


def diff_panel(view: profiler_data.ProfilerView) -> html.Div:
    """The operator diff: the note on how it is normalised, the new operators, the top rows
    and the chart."""
    diff = view.diff
    if diff is None:
        return html.Div(
            [
                html.H3("Version against version"),
                html.P(
                    "Only one version of this model has a profiler trace: upload a trace of "
                    "another version (observe import profile FILE --model M --version V "
                    "--host H) to compare them.",
                    className="muted",
                ),
            ],
            id="profiler-no-diff",
        )
    base, target = diff.base, diff.target
    title = (
        f"{target.model_version} (#{target.id}) against {base.model_version} (#{base.id}): "
        f"{diff.delta_self_us / 1000:+,.3f} ms of operator self time"
    )
    header = html.Thead(html.Tr([html.Th(name) for name in DIFF_COLUMNS]))
    rows = [
        html.Tr(
            [
                html.Td(op.name),
                html.Td(op.category),
                html.Td(op.status),
                html.Td(f"{op.base_self_us / 1000:,.3f}"),
                html.Td(f"{op.target_self_us / 1000:,.3f}"),
                html.Td(f"{op.delta_self_us / 1000:+,.3f}"),
            ],
            className=f"diff-{op.status}",
            **data_attributes(operator=op.name),
        )
        for op in diff.operators[:NUM_DIFF_ROWS]
    ]
    new = ", ".join(diff.new_operators) or "none"
    return html.Div(
        [
            html.H3(title, id="profiler-diff-title"),
            html.P([diff.note, ". New operators: ", html.Strong(new)], className="muted"),
            html.Table(
                [header, html.Tbody(rows)], className="data-table", id="profiler-diff-table"
            ),
            graph(
                "profiler-diff-chart",
                profiler_figures.diff_figure(
                    diff.operators, title="Operators ranked by the time they add"
                ),
            ),
        ],
        id="profiler-diff-panel",
    )


def no_profiles() -> html.Div:
    return empty_state(
        "No profiler traces for this model",
        [
            "Upload a PyTorch profiler (Kineto) trace with ",
            html.Code("observe import profile FILE --model M --version V --host H"),
            ", POST it to ",
            html.Code("/api/v1/profiles"),
            ", or capture one around your serving code with ",
            html.Code("observe.profiling.capture(...)"),
            ".",
        ],
        element_id="profiler-empty",
    )
