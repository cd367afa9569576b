"""Profiler: a model's PyTorch profiler traces; one trace's top operators by self time (by
category) and a profiler step's timeline; and the operator diff of two traces, version against
version, ranked by the time the target adds."""

from __future__ import annotations

from typing import Any

import dash
from dash import Dash, Output, dcc, html

from dashboards import links
from dashboards.components import (
    as_list,
    choice,
    data_attributes,
    data_table,
    dropdown,
    empty_state,
    graph,
    model_picker,
    page_layout,
    register_model_choices,
    register_model_view,
    url_values,
    value_options,
)
from dashboards.data import profiler as profiler_data
from dashboards.figures import empty_figure
from dashboards.figures import profiler as profiler_figures
from dashboards.formats import format_count

PAGE = "profiler"
PARAMS = ("model", "profile", "category", "step", "base", "target")
PROFILE_COLUMNS = ("Trace", "Version", "Host", "Captured (UTC)", "Events", "Operators", "Steps")
DIFF_COLUMNS = ("Operator", "Category", "Status", "Base (ms)", "Target (ms)", "Added (ms)")
NUM_DIFF_ROWS = 10
#: The outputs after the status line without a trace to show.
NOTHING: tuple[Any, ...] = (None, None, None, None, [], [], [], [], [])

dash.register_page(
    __name__, path="/profiler", name="Profiler", title="Profiler · observe", order=70
)


def layout(**url_params: Any) -> html.Div:
    params: dict[str, Any] = url_values(url_params, PARAMS)
    params["category"] = as_list(url_params.get("category"))
    return page_layout(
        PAGE,
        params,
        title="Profiler",
        subtitle="PyTorch profiler traces of a model: where one trace spends its time, what a "
        "step looks like, and which operators another version made slower.",
        pickers=[
            model_picker(PAGE, params["model"]),
            choice(PAGE, "profile", "Trace", params["profile"], "newest"),
            dropdown(
                PAGE,
                "category",
                "Categories",
                params["category"],
                value_options(params["category"]),
                multi=True,
                placeholder="all",
            ),
            choice(PAGE, "step", "Step", params["step"], "first"),
            choice(PAGE, "base", "Diff base", params["base"], "another version"),
            choice(PAGE, "target", "Diff target", params["target"], "newest"),
        ],
        body=[
            html.Div(id="profiler-profiles"),
            html.Div(id="profiler-operators"),
            html.Div(id="profiler-diff"),
            html.Div(id="profiler-timeline"),
        ],
    )


def register_callbacks(app: Dash, context: Any) -> None:
    register_model_choices(app, PAGE, context)
    register_model_view(
        app,
        PAGE,
        PARAMS,
        [
            Output("profiler-profiles", "children"),
            Output("profiler-operators", "children"),
            Output("profiler-diff", "children"),
            Output("profiler-timeline", "children"),
        ],
        lambda params: show_profiler(context, params),
        pickers=["profile", "category", "step", "base", "target"],
        blank=NOTHING,
    )


def show_profiler(context: Any, params: dict[str, Any]) -> tuple[Any, ...]:
    view = profiler_data.load_profiler(
        context.sessions,
        model=str(params["model"]),
        profile_id=profiler_data.parse_profile_id(params["profile"], "profile"),
        base_id=profiler_data.parse_profile_id(params["base"], "base"),
        target_id=profiler_data.parse_profile_id(params["target"], "target"),
        categories=as_list(params["category"]),
        step=profiler_data.parse_step(params["step"]),
    )
    if view.profile is None:
        return f"{view.model} · no profiler traces", no_profiles(), *NOTHING[1:]
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
        value_options(view.categories),
        [{"label": f"step {s.step}", "value": str(s.step)} for s in view.steps],
        profile_options,
        profile_options,
    )


def profiles_table(view: profiler_data.ProfilerView) -> html.Table:
    current = view.profile.id if view.profile else None
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
    return data_table(PROFILE_COLUMNS, rows, table_id="profiler-list")


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
            data_table(DIFF_COLUMNS, rows, table_id="profiler-diff-table"),
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
