"""GET /api/v1/models/{model}/regressions."""

from __future__ import annotations

from typing import Any

from observe.db.engine import Database
from tests.conftest import bearer
from tests.factories import T0
from tests.integration.pipeline import latency_scenarios as scenarios

PARAMS = {"start": (T0 - scenarios.HISTORY).isoformat(), "end": (T0 + scenarios.AFTER).isoformat()}


def test_regressions_are_detected_live_with_carrier_event_and_test(
    client: Any, db: Database, api_keys: dict[str, str]
) -> None:
    scenarios.store(db, *scenarios.canary_history())

    response = client.get(
        "/api/v1/models/fraud-scorer/regressions",
        params=PARAMS | {"percentile": [95, 99]},
        headers=bearer(api_keys["read"]),
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["bucket_seconds"], body["percentiles"]) == (300, [95.0, 99.0])
    # the model's own series, and v2 against v1 serving beside it
    assert sorted((i["series"], i["percentile"]) for i in body["items"]) == [
        ("all", 95.0),
        ("all", 99.0),
        ("v2", 95.0),
        ("v2", 99.0),
    ]
    for item in body["items"]:
        assert item["onset_at"].startswith("2026-11-16T12:00:00")
        assert item["model_version"] == "v2"
        assert item["is_open"] is True
        assert item["event"]["kind"] == "canary"
        assert item["carriers"][0]["value"] == "v2"
        assert item["significance"]["quantile_test"]["p_value"] < 1e-6
        assert item["after_ms"] / item["before_ms"] == item["ratio"]


def test_a_version_filter_and_a_quiet_model(
    client: Any, db: Database, api_keys: dict[str, str]
) -> None:
    scenarios.store(db, *scenarios.host_history())
    headers = bearer(api_keys["read"])

    one = client.get(
        "/api/v1/models/fraud-scorer/regressions",
        params=PARAMS | {"model_version": "v1", "percentile": 95, "bucket": "10m"},
        headers=headers,
    )
    quiet = client.get("/api/v1/models/nobody/regressions", params=PARAMS, headers=headers)

    assert one.status_code == 200, one.text
    assert {i["series"] for i in one.json()["items"]} == {"all", "v1"}
    assert quiet.status_code == 200
    assert quiet.json()["items"] == []


def test_bad_parameters_are_422_and_a_read_key_is_needed(
    client: Any, api_keys: dict[str, str]
) -> None:
    headers = bearer(api_keys["read"])
    path = "/api/v1/models/fraud-scorer/regressions"

    for params in (
        {"percentile": 0},
        {"percentile": "x"},
        {"bucket": "90s"},
        {"bucket": "soon"},
        {"start": "-1h", "end": "-2h"},
        {"start": "-400d", "bucket": "1m"},
    ):
        response = client.get(path, params=params, headers=headers)
        assert response.status_code == 422, (params, response.text)
    assert client.get(path).status_code == 401
    assert client.get(path, headers=bearer(api_keys["ingest"])).status_code == 403
