"""Charts of the profiler page: top operators by self time, the operator diff of two traces,
and a profiler step's timeline."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from dashboards.figures import CLOSEST_LAYOUT, chart_title, colour, empty_figure
from observe.schemas.profiles import OperatorDelta, OperatorOut, TimelineOut

ADDED_COLOUR = "#dc2626"
NEW_COLOUR = "#d97706"
SAVED_COLOUR = "#059669"
BAR_PX = 22
LANE_PX = 24
MAX_DIFF_BARS = 20


def _hbar_layout(title: str, num_bars: int, x_title: str) -> dict[str, object]:
    return {
        **CLOSEST_LAYOUT,
        "title": chart_title(title),
        "height": max(240, 110 + BAR_PX * num_bars),
        "xaxis": {"title": x_title},
        "yaxis": {"autorange": "reversed", "automargin": True},
    }


def operators_figure(operators: Sequence[OperatorOut], *, title: str) -> go.Figure:
    """Operators by self time (ms), largest first, one colour per category."""
    if not operators:
        return empty_figure("No operators in this category", title=title)
    categories = sorted({op.category for op in operators})
    figure = go.Figure()
    for index, category in enumerate(categories):
        ops = [op for op in operators if op.category == category]
        figure.add_trace(
            go.Bar(
                x=[op.self_us / 1000 for op in ops],
                y=[op.name for op in ops],
                orientation="h",
                name=category,
                marker={"color": colour(index)},
                customdata=[[op.count, op.total_us / 1000, op.mean_us / 1000] for op in ops],
                hovertemplate=(
                    "%{y}: %{x:,.3f} ms self, %{customdata[1]:,.3f} ms total, "
                    "%{customdata[0]:,} calls<extra>" + category + "</extra>"
                ),
            )
        )
    order = [op.name for op in operators]
    figure.update_layout(**_hbar_layout(title, len(operators), "self time (ms)"))
    figure.update_yaxes(categoryorder="array", categoryarray=order)
    return figure


def diff_figure(operators: Sequence[OperatorDelta], *, title: str) -> go.Figure:
    """Operators ranked by the self time the target adds over the base (ms): added in red,
    new operators in amber, time saved in green."""
    shown = [op for op in operators if op.delta_self_us != 0][:MAX_DIFF_BARS]
    if not shown:
        return empty_figure("The two traces spend the same time per operator", title=title)
    labels = [f"{op.name} (new)" if op.status == "new" else op.name for op in shown]
    figure = go.Figure(
        go.Bar(
            x=[op.delta_self_us / 1000 for op in shown],
            y=labels,
            orientation="h",
            marker={"color": [_delta_colour(op) for op in shown]},
            customdata=[
                [op.base_self_us / 1000, op.target_self_us / 1000, op.category] for op in shown
            ],
            hovertemplate=(
                "%{y} (%{customdata[2]}): %{x:+,.3f} ms "
                "(%{customdata[0]:,.3f} -> %{customdata[1]:,.3f})<extra></extra>"
            ),
        )
    )
    figure.update_layout(**_hbar_layout(title, len(shown), "self time added (ms)"))
    return figure


def _delta_colour(op: OperatorDelta) -> str:
    if op.status == "new":
        return NEW_COLOUR
    return ADDED_COLOUR if op.delta_self_us > 0 else SAVED_COLOUR


def timeline_figure(timeline: TimelineOut, *, title: str) -> go.Figure:
    """Events as bars over time (ms from the step's start), one lane per thread and nesting
    depth, one colour per category."""
    if not timeline.events:
        return empty_figure("No events in this range", title=title)
    names = {
        thread.index: thread.name or f"{thread.pid}/{thread.tid}" for thread in timeline.threads
    }
    lanes = sorted({(e.thread, e.depth) for e in timeline.events})
    lane_of = {lane: i for i, lane in enumerate(lanes)}
    origin = timeline.start_us
    categories = sorted({e.category for e in timeline.events})
    figure = go.Figure()
    for index, category in enumerate(categories):
        events = [e for e in timeline.events if e.category == category]
        figure.add_trace(
            go.Bar(
                y=[lane_of[(e.thread, e.depth)] for e in events],
                x=[e.duration_us / 1000 for e in events],
                base=[(e.start_us - origin) / 1000 for e in events],
                orientation="h",
                name=category,
                marker={"color": colour(index), "line": {"width": 0}},
                customdata=[[e.name, (e.start_us - origin) / 1000] for e in events],
                hovertemplate="%{customdata[0]}: %{x:,.3f} ms at +%{customdata[1]:,.3f} ms"
                "<extra>" + category + "</extra>",
            )
        )
    note = f" (the longest {len(timeline.events):,} of {timeline.num_events_in_range:,})"
    figure.update_layout(
        **CLOSEST_LAYOUT,
        title=chart_title(title + (note if timeline.truncated else "")),
        barmode="overlay",
        bargap=0.15,
        height=max(260, 120 + LANE_PX * len(lanes)),
        xaxis={"title": "ms from the start", "rangemode": "tozero"},
        yaxis={
            "tickmode": "array",
            "tickvals": list(range(len(lanes))),
            "ticktext": [f"{names.get(t, t)} · {d}" for t, d in lanes],
            "autorange": "reversed",
            "automargin": True,
        },
    )
    return figure
