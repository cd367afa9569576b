"""dashboards.figures.profiler: top operators, the operator diff and a step's timeline."""

from __future__ import annotations

import pytest

from dashboards.figures import profiler as profiler_figures
from observe.schemas.profiles import (
    OperatorDelta,
    OperatorOut,
    ThreadOut,
    TimelineEvent,
    TimelineOut,
)


def operator(name: str, category: str, self_us: float) -> OperatorOut:
    return OperatorOut(
        name=name,
        category=category,
        count=4,
        total_us=self_us * 2,
        self_us=self_us,
        mean_us=self_us / 2,
        input_shapes=[],
    )


def delta(name: str, status: str, base_us: float, target_us: float) -> OperatorDelta:
    return OperatorDelta(
        name=name,
        category="cpu_op",
        status=status,  # type: ignore[arg-type]
        base_count=1,
        target_count=1,
        base_total_us=base_us,
        target_total_us=target_us,
        base_self_us=base_us,
        target_self_us=target_us,
        delta_self_us=target_us - base_us,
        delta_total_us=target_us - base_us,
        delta_self_pct=None,
    )


def test_top_operators_are_bars_of_self_time_by_category_largest_first() -> None:
    operators = [
        operator("aten::addmm", "cpu_op", 1500.0),
        operator("ProfilerStep*", "user_annotation", 130.0),
        operator("aten::relu", "cpu_op", 20.0),
    ]

    figure = profiler_figures.operators_figure(operators, title="Top")

    by_category = {trace.name: trace for trace in figure.data}
    assert list(by_category["cpu_op"].y) == ["aten::addmm", "aten::relu"]
    assert list(by_category["cpu_op"].x) == pytest.approx([1.5, 0.02])
    assert list(figure.layout.yaxis.categoryarray) == ["aten::addmm", "ProfilerStep*", "aten::relu"]


def test_the_diff_colours_added_new_and_saved_time() -> None:
    operators = [
        delta("aten::addmm", "changed", 98.7, 367.1),
        delta("aten::native_layer_norm", "new", 0.0, 57.4),
        delta("aten::view", "unchanged", 1.0, 1.0),
        delta("aten::linear", "changed", 3.0, 1.0),
    ]

    figure = profiler_figures.diff_figure(operators, title="Diff")

    [bar] = figure.data
    assert list(bar.y) == ["aten::addmm", "aten::native_layer_norm (new)", "aten::linear"]
    assert list(bar.x) == pytest.approx([0.2684, 0.0574, -0.002])
    assert list(bar.marker.color) == [
        profiler_figures.ADDED_COLOUR,
        profiler_figures.NEW_COLOUR,
        profiler_figures.SAVED_COLOUR,
    ]


def test_the_timeline_has_a_lane_per_thread_and_depth() -> None:
    timeline = TimelineOut(
        profile_id=1,
        start_us=1000.0,
        end_us=3000.0,
        step=1,
        num_events_in_range=5,
        truncated=True,
        threads=[ThreadOut(index=0, pid="1", tid="7", name="python")],
        events=[
            TimelineEvent(
                thread=0,
                name="ProfilerStep#1",
                category="user_annotation",
                start_us=1000.0,
                duration_us=2000.0,
                depth=0,
            ),
            TimelineEvent(
                thread=0,
                name="aten::addmm",
                category="cpu_op",
                start_us=1500.0,
                duration_us=400.0,
                depth=1,
            ),
        ],
    )

    figure = profiler_figures.timeline_figure(timeline, title="Step 1")

    by_category = {trace.name: trace for trace in figure.data}
    addmm = by_category["cpu_op"]
    assert list(addmm.base) == [0.5]
    assert list(addmm.x) == [0.4]
    assert list(addmm.y) == [1]
    assert list(figure.layout.yaxis.ticktext) == ["python · 0", "python · 1"]
    assert figure.layout.title.text == "Step 1 (the longest 2 of 5)"
