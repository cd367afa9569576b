"""GET /api/v1/traces/{trace_id}, /api/v1/traces and /api/v1/spans/latency on both databases,
over the spans of tests/data/otlp/traces.pb (three traces of the real SDK, a minute apart)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests import factories
from tests.conftest import bearer

OTLP = Path(__file__).parents[2] / "data" / "otlp"
TRACE_1 = "00000000000000000000000000000001"
TRACE_2 = "00000000000000000000000000000002"
TRACE_3 = "00000000000000000000000000000003"
WINDOW = {"start": "2026-11-16T12:00:00Z", "end": "2026-11-16T12:05:00Z"}


@pytest.fixture
def loaded(client: Any, api_keys: dict[str, str]) -> Any:
    """The client, with the SDK's three traces and one record carrying trace 1 stored."""
    ingest = bearer(api_keys["ingest"])
    response = client.post(
        "/v1/traces",
        content=(OTLP / "traces.pb").read_bytes(),
        headers={**ingest, "Content-Type": "application/x-protobuf"},
    )
    assert response.status_code == 200, response.text
    record = factories.record(trace_id=TRACE_1, request_id="req-traced")
    assert client.post("/api/v1/records", json=[record], headers=ingest).status_code == 200
    return client


def get(client: Any, api_keys: dict[str, str], path: str, **params: Any) -> Any:
    return client.get(path, params=params, headers=bearer(api_keys["read"]))


def test_a_trace_comes_as_a_span_tree_with_its_records(
    loaded: Any, api_keys: dict[str, str]
) -> None:
    response = get(loaded, api_keys, f"/api/v1/traces/{TRACE_2.upper()}")

    assert response.status_code == 200, response.text
    trace = response.json()
    assert (trace["trace_id"], trace["model"], trace["root_name"]) == (
        TRACE_2,
        "fraud-scorer",
        "predict",
    )
    assert (trace["num_spans"], trace["num_errors"], trace["duration_ms"]) == (3, 2, 284.0)
    assert [(s["name"], s["depth"], s["offset_ms"], s["duration_ms"]) for s in trace["spans"]] == [
        ("predict", 0, 0.0, 284.0),
        ("feature_store.lookup", 1, 1.0, 250.0),
        ("forward", 1, 252.0, 31.0),
    ]
    root, lookup, forward = trace["spans"]
    assert root["children"] == [lookup["span_id"], forward["span_id"]]
    assert lookup["parent_span_id"] == root["span_id"]
    assert (lookup["kind"], lookup["status_code"], lookup["status_message"]) == (
        "client",
        "error",
        "feature store timed out",
    )
    assert lookup["attributes"]["cache.hit"] is False
    assert root["resource_attributes"]["service.name"] == "fraud-scorer"
    assert trace["records"] == []


def test_records_carrying_the_trace_id_come_with_it(loaded: Any, api_keys: dict[str, str]) -> None:
    trace = get(loaded, api_keys, f"/api/v1/traces/{TRACE_1}").json()

    assert [r["request_id"] for r in trace["records"]] == ["req-traced"]
    assert trace["records"][0]["model_version"] == "v1"


def test_an_unknown_or_malformed_trace_id(loaded: Any, api_keys: dict[str, str]) -> None:
    assert get(loaded, api_keys, "/api/v1/traces/" + "ab" * 16).status_code == 404
    response = get(loaded, api_keys, "/api/v1/traces/not-a-trace")
    assert response.status_code == 422
    assert "32 hex digits" in response.json()["detail"]


def test_traces_of_a_model_come_slowest_first(loaded: Any, api_keys: dict[str, str]) -> None:
    response = get(loaded, api_keys, "/api/v1/traces", model="fraud-scorer", **WINDOW)

    assert response.status_code == 200, response.text
    traces = response.json()["traces"]
    assert [
        (t["trace_id"], t["root_name"], t["duration_ms"], t["num_spans"], t["has_error"])
        for t in traces
    ] == [(TRACE_2, "predict", 284.0, 3, True), (TRACE_1, "predict", 45.0, 3, False)]
    assert all(t["has_root"] and t["service_name"] == "fraud-scorer" for t in traces)


def test_traces_filter_by_service_errors_window_and_limit(
    loaded: Any, api_keys: dict[str, str]
) -> None:
    def ids(**params: Any) -> list[str]:
        response = get(loaded, api_keys, "/api/v1/traces", **params)
        assert response.status_code == 200, response.text
        return [t["trace_id"] for t in response.json()["traces"]]

    assert ids(service="fraud-scorer", **WINDOW) == [TRACE_2, TRACE_1, TRACE_3]
    assert ids(service="fraud-scorer", has_error="false", **WINDOW) == [TRACE_1, TRACE_3]
    assert ids(model="fraud-scorer", limit=1, **WINDOW) == [TRACE_2]
    assert ids(model="fraud-scorer", start="2026-11-16T12:00:30Z", end=WINDOW["end"]) == [TRACE_2]
    assert ids(model="other", **WINDOW) == []


def test_listing_traces_needs_a_model_or_service(loaded: Any, api_keys: dict[str, str]) -> None:
    response = get(loaded, api_keys, "/api/v1/traces", **WINDOW)

    assert response.status_code == 422
    assert "model or service" in response.json()["detail"]


def test_span_latency_series_per_span_name(loaded: Any, api_keys: dict[str, str]) -> None:
    response = get(
        loaded,
        api_keys,
        "/api/v1/spans/latency",
        model="fraud-scorer",
        bucket="1m",
        percentile=[50, 95],
        **WINDOW,
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["bucket_seconds"] == 60
    series = {s["key"]: s["points"] for s in body["series"]}
    assert sorted(series) == ["feature_store.lookup", "forward", "predict"]
    lookup = series["feature_store.lookup"]
    assert [p["t"] for p in lookup] == ["2026-11-16T12:00:00Z", "2026-11-16T12:01:00Z"]
    assert [p["num_spans"] for p in lookup] == [1, 1]
    assert [p["num_errors"] for p in lookup] == [0, 1]
    assert [p["p50"] for p in lookup] == pytest.approx([12.0, 250.0], rel=0.01)
    assert [p["mean_ms"] for p in lookup] == pytest.approx([12.0, 250.0])


def test_span_latency_by_service_and_name_over_one_bucket(
    loaded: Any, api_keys: dict[str, str]
) -> None:
    response = get(
        loaded,
        api_keys,
        "/api/v1/spans/latency",
        service="fraud-scorer",
        name=["forward", "GET /score"],
        bucket="1h",
        percentile=[100],
        **WINDOW,
    )

    assert response.status_code == 200, response.text
    series = {s["key"]: s["points"] for s in response.json()["series"]}
    assert sorted(series) == ["GET /score", "forward"]
    assert [p["num_spans"] for p in series["forward"]] == [2]
    assert series["forward"][0]["p100"] == pytest.approx(31.0, rel=0.01)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"model": "fraud-scorer", "service": "fraud-scorer"},
        {"model": "fraud-scorer", "bucket": "90s"},
        {"model": "fraud-scorer", "percentile": 120},
    ],
    ids=["neither", "both", "bucket", "percentile"],
)
def test_span_latency_refuses_bad_parameters(
    loaded: Any, api_keys: dict[str, str], params: dict[str, Any]
) -> None:
    assert get(loaded, api_keys, "/api/v1/spans/latency", **params, **WINDOW).status_code == 422
