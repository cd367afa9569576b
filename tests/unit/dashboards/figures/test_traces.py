"""dashboards.figures.traces: the span waterfall and span percentiles over time."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from dashboards.figures import traces as trace_figures

T0 = dt.datetime(2026, 11, 16, 12, 0, tzinfo=dt.UTC)


def span(name: str, depth: int, offset_ms: float, duration_ms: float, **extra: Any) -> dict:
    return {
        "span_id": f"{name}-id",
        "name": name,
        "service_name": extra.get("service", "checkout"),
        "kind": extra.get("kind", "internal"),
        "depth": depth,
        "offset_ms": offset_ms,
        "duration_ms": duration_ms,
        "status_code": extra.get("status", "ok"),
        "status_message": extra.get("message"),
        "attributes": extra.get("attributes"),
    }


SPANS = [
    span("predict", 0, 0.0, 70.0),
    span(
        "feature_store.lookup",
        1,
        0.5,
        4.0,
        service="feast",
        kind="client",
        attributes={"db.system": "redis", "keys": 12},
    ),
    span("forward", 1, 4.5, 64.5, status="error", message="CUDA out of memory"),
]


def test_spans_are_bars_from_their_offset_for_their_duration_in_tree_order() -> None:
    figure = trace_figures.waterfall_figure(SPANS, title="Trace t")

    by_service = {trace.name: trace for trace in figure.data}
    assert set(by_service) == {"checkout", "feast"}
    checkout = by_service["checkout"]
    assert list(checkout.y) == [0, 2]
    assert list(checkout.base) == [0.0, 4.5]
    assert list(checkout.x) == [70.0, 64.5]
    assert list(figure.layout.yaxis.ticktext) == [
        "predict",
        "\u00a0\u00a0feature_store.lookup",
        "\u00a0\u00a0forward",
    ]
    assert figure.layout.yaxis.autorange == "reversed"


def test_failed_spans_are_red_and_the_hover_shows_status_and_attributes() -> None:
    figure = trace_figures.waterfall_figure(SPANS, title="Trace t")

    by_service = {trace.name: trace for trace in figure.data}
    assert by_service["checkout"].marker.color[1] == trace_figures.ERROR_COLOUR
    assert by_service["checkout"].marker.color[0] != trace_figures.ERROR_COLOUR
    row, hover = by_service["feast"].customdata[0]
    assert row == 1
    assert "db.system = redis" in hover
    assert "keys = 12" in hover
    assert "status error: CUDA out of memory" in by_service["checkout"].customdata[1][1]


def test_many_attributes_are_cut_short_in_the_hover() -> None:
    attributes = {f"a{i}": i for i in range(12)}

    figure = trace_figures.waterfall_figure(
        [span("predict", 0, 0, 1, attributes=attributes)], title="t"
    )

    hover = figure.data[0].customdata[0][1]
    assert "a7 = 7" in hover
    assert "a8 = 8" not in hover
    assert "4 more (click the span)" in hover


def test_a_trace_without_spans_says_so() -> None:
    figure = trace_figures.waterfall_figure([], title="Trace t")

    assert figure.layout.annotations[0].text == "This trace has no spans stored"


def test_span_percentiles_draw_a_line_per_span_name() -> None:
    frame = pd.DataFrame(
        {
            "series": ["forward", "forward", "lookup"],
            "bucket_start": [T0, T0 + dt.timedelta(minutes=5), T0],
            "num_spans": [10, 12, 10],
            "p95": [15.0, 45.0, 4.0],
        }
    )

    figure = trace_figures.span_percentiles_figure(
        frame,
        percentile_column="p95",
        window_start=T0,
        window_end=T0 + dt.timedelta(hours=1),
        bucket_label="5 min",
    )

    lines = {trace.name: trace for trace in figure.data}
    assert list(lines["forward"].y) == [15.0, 45.0]
    assert list(lines["lookup"].y) == [4.0]
    assert figure.layout.title.text == "p95 span duration per 5 min, per span name"
    assert list(figure.layout.xaxis.range) == [T0, T0 + dt.timedelta(hours=1)]
