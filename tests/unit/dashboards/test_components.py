"""dashboards.components: URL state helpers and shared widgets."""

from __future__ import annotations

from typing import Any

import pytest

from dashboards import components
from dashboards.data import Verdict


def find(component: Any, predicate: Any) -> list[Any]:
    """Every component in the tree under `component` for which `predicate` holds."""
    found = [component] if predicate(component) else []
    children = getattr(component, "children", None)
    if children is None:
        return found
    for child in children if isinstance(children, list | tuple) else [children]:
        found += find(child, predicate)
    return found


def by_id(component: Any, component_id: Any) -> Any:
    [match] = find(component, lambda c: getattr(c, "id", None) == component_id)
    return match


def test_query_string_repeats_lists_and_leaves_out_empty_values() -> None:
    query = components.query_string(
        [("model", "fraud scorer"), ("start", ""), ("end", None), ("host", ["gpu-1", "gpu-2"])]
    )

    assert query == "?model=fraud+scorer&host=gpu-1&host=gpu-2"
    assert components.query_string([("start", "")]) == ""


def test_merge_query_replaces_changed_parameters_and_keeps_the_rest_in_order() -> None:
    search = "?model=a&start=-7d&host=gpu-1&host=gpu-2&by=host"

    merged = components.merge_query(
        search, {"start": "-24h", "host": ["gpu-3"], "percentile": "99"}
    )

    assert merged == "?model=a&start=-24h&host=gpu-3&by=host&percentile=99"


def test_merge_query_removes_a_parameter_set_to_nothing() -> None:
    assert components.merge_query("?start=-7d&end=2026-11-20T00:00Z", {"end": ""}) == "?start=-7d"
    assert components.merge_query(None, {"model": "a"}) == "?model=a"


def test_changed_params_ignores_controls_that_show_what_the_page_was_rendered_with() -> None:
    rendered = {"model": ["a"], "start": [], "host": ["gpu-1"], "by": ["model_version"]}
    values = {"model": "a", "start": "", "host": ["gpu-1"], "by": "host", "end": None}

    assert components.changed_params(values, rendered) == {"by": "host"}


@pytest.mark.parametrize(
    ("value", "as_list", "first"),
    [(None, [], None), ("", [], None), ("x", ["x"], "x"), (["x", "", "y"], ["x", "y"], "x")],
)
def test_url_values_as_lists(value: Any, as_list: list[str], first: str | None) -> None:
    assert components.as_list(value) == as_list
    assert components.first(value) == first


def test_window_picker_selects_the_preset_the_url_names() -> None:
    picker = components.window_picker("latency", "-7d", None)

    preset = by_id(picker, {"type": components.WINDOW_PRESET, "page": "latency"})
    assert preset.value == "-7d"
    assert by_id(picker, components.param_id("latency", "start")).value == "-7d"
    assert by_id(picker, components.param_id("latency", "end")).value == ""


@pytest.mark.parametrize(
    ("start", "end", "preset"),
    [(None, None, "-24h"), ("-3h", None, None), ("-7d", "2026-11-20T00:00Z", None)],
)
def test_window_picker_selects_no_preset_for_other_windows(
    start: str | None, end: str | None, preset: str | None
) -> None:
    picker = components.window_picker("overview", start, end)

    assert by_id(picker, {"type": components.WINDOW_PRESET, "page": "overview"}).value == preset


def test_rendered_params_records_values_as_lists() -> None:
    store = components.rendered_params("infra", {"start": "-7d", "end": None, "host": ["a"]})

    assert store.id == {"type": components.RENDERED_PARAMS, "page": "infra"}
    assert store.data == {"start": ["-7d"], "end": [], "host": ["a"]}


def test_verdict_badge_colour_follows_the_verdict() -> None:
    badge = components.verdict_badge(Verdict("breached", "breached: p95 70 > 60 ms"))

    assert badge.className == "badge badge-breached"
    assert badge.children == "breached: p95 70 > 60 ms"


@pytest.mark.parametrize(
    ("relayout", "window"),
    [
        (
            {"xaxis.range[0]": "2026-11-29 10:15:23.456", "xaxis.range[1]": "2026-11-29 12:00"},
            ("2026-11-29T10:15:23Z", "2026-11-29T12:00:00Z"),
        ),
        (
            {"xaxis.range": ["2026-11-29T10:00:00", "2026-11-30T00:00:00"]},
            ("2026-11-29T10:00:00Z", "2026-11-30T00:00:00Z"),
        ),
        ({"xaxis.autorange": True}, None),
        ({"yaxis.range[0]": 1, "yaxis.range[1]": 5}, None),
        ({"xaxis.range[0]": "soon", "xaxis.range[1]": "later"}, None),
        ({"xaxis.range[0]": "2026-11-29 12:00", "xaxis.range[1]": "2026-11-29 12:00"}, None),
        (None, None),
    ],
)
def test_zooming_a_chart_gives_an_absolute_window(
    relayout: dict[str, Any] | None, window: tuple[str, str] | None
) -> None:
    assert components.zoomed_window(relayout) == window


def test_a_graph_is_as_tall_as_its_figure_and_has_no_style_without_a_height() -> None:
    import plotly.graph_objects as go

    tall = components.graph("a", go.Figure(layout={"height": 320}))
    free = components.graph("b", go.Figure())

    assert tall.style == {"height": "320px"}
    assert free.style == {}
