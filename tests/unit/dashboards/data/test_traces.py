"""dashboards.data.traces: the pure parts (trace ids, span records, busiest span names)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from dashboards.data import InputError
from dashboards.data import traces as trace_data
from observe.pipeline.traces import SpanLatencySeries, TraceView

T0 = dt.datetime(2026, 11, 16, 12, 0, tzinfo=dt.UTC)


def test_trace_ids_are_32_hex_digits_in_lower_case() -> None:
    assert trace_data.parse_trace_id("AB" * 16) == "ab" * 16
    assert trace_data.parse_trace_id("") is None
    with pytest.raises(InputError, match="trace: must be 32 hex digits"):
        trace_data.parse_trace_id("xyz")


def test_span_records_keep_what_the_waterfall_and_the_details_show() -> None:
    span = dict.fromkeys(trace_data.SPAN_FIELDS)
    span.update(name="predict", depth=0, offset_ms=0.0, duration_ms=5.0, trace_id="t", model="m")
    trace = TraceView("t", "m", "predict", "svc", T0, T0, 5.0, 1, 0, [span], [])

    [record] = trace_data.span_records(trace)

    assert set(record) == set(trace_data.SPAN_FIELDS)
    assert (record["name"], record["duration_ms"]) == ("predict", 5.0)


def test_the_busiest_span_names_are_kept() -> None:
    frame = pd.DataFrame(
        {
            "series": ["a", "b", "b", "c"],
            "bucket_start": [T0] * 4,
            "num_spans": [5, 10, 10, 30],
        }
    )
    series = SpanLatencySeries(T0, T0, 60, frame)

    assert trace_data.busiest_span_names(series, limit=2) == ["b", "c"]
    assert list(trace_data.span_series_frame(series, ["c"])["num_spans"]) == [30]
    assert trace_data.busiest_span_names(SpanLatencySeries(T0, T0, 60, frame.iloc[0:0])) == []
