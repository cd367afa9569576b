"""observe.pipeline.traces.build_span_tree: depth-first order, depths, children, orphans."""

from __future__ import annotations

from typing import Any

from observe.pipeline.traces import build_span_tree


def span(span_id: str, parent: str | None = None) -> dict[str, Any]:
    return {"span_id": span_id, "parent_span_id": parent, "name": f"span {span_id}"}


def shape(tree: list[dict[str, Any]]) -> list[tuple[str, int, list[str], bool]]:
    return [(s["span_id"], s["depth"], s["children"], s["parent_missing"]) for s in tree]


def test_parents_come_before_their_children_and_siblings_keep_start_order() -> None:
    # In start order: root, its two children, then a grandchild under the first child.
    spans = [span("r"), span("a", "r"), span("b", "r"), span("a1", "a")]

    assert shape(build_span_tree(spans)) == [
        ("r", 0, ["a", "b"], False),
        ("a", 1, ["a1"], False),
        ("a1", 2, [], False),
        ("b", 1, [], False),
    ]


def test_a_span_whose_parent_is_not_stored_is_a_root_marked_parent_missing() -> None:
    spans = [span("r"), span("x", "not-here"), span("x1", "x")]

    assert shape(build_span_tree(spans)) == [
        ("r", 0, [], False),
        ("x", 0, ["x1"], True),
        ("x1", 1, [], False),
    ]


def test_spans_on_a_parent_cycle_are_all_returned_once() -> None:
    spans = [span("r"), span("a", "b"), span("b", "a"), span("self", "self")]

    tree = build_span_tree(spans)

    assert sorted(s["span_id"] for s in tree) == ["a", "b", "r", "self"]
    assert [s["depth"] for s in tree if s["span_id"] in ("a", "self")] == [0, 0]


def test_no_spans_make_an_empty_tree() -> None:
    assert build_span_tree([]) == []
