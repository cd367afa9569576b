"""GET /api/v1/diagnoses: the DESIGN 3.2 shape, defaults and errors."""

from __future__ import annotations

import datetime as dt
from typing import Any

from observe.db.engine import Database
from tests.conftest import bearer
from tests.factories import T0
from tests.integration.pipeline.test_diagnosis import serve


def test_diagnosis_has_the_contract_shape(
    client: Any, db: Database, api_keys: dict[str, str]
) -> None:
    serve(db, canary_share=0.25, canary_slowdown=3.0)

    response = client.get(
        "/api/v1/diagnoses",
        params={
            "model": "fraud-scorer",
            "start": T0.isoformat(),
            "end": (T0 + dt.timedelta(hours=1)).isoformat(),
        },
        headers=bearer(api_keys["read"]),
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"model", "window", "baseline", "symptom", "steps", "causes"}
    assert body["baseline"]["end"] == body["window"]["start"]
    assert body["symptom"]["metric"] == "p95_latency_ms"
    assert {s["step"] for s in body["steps"]} == {"isolate", "data", "infra", "model"}
    assert body["causes"][0]["kind"] == "deploy"
    assert body["causes"][0]["scope"] == {"model_version": "v7"}
    assert 0 < body["causes"][0]["score"] <= 1


def test_unknown_model_and_bad_windows(client: Any, api_keys: dict[str, str]) -> None:
    headers = bearer(api_keys["read"])
    start, end = T0.isoformat(), (T0 + dt.timedelta(hours=1)).isoformat()

    unknown = client.get(
        "/api/v1/diagnoses", params={"model": "nope", "start": start, "end": end}, headers=headers
    )
    inverted = client.get(
        "/api/v1/diagnoses",
        params={"model": "fraud-scorer", "start": end, "end": start},
        headers=headers,
    )
    half_baseline = client.get(
        "/api/v1/diagnoses",
        params={"model": "fraud-scorer", "start": start, "end": end, "baseline_start": start},
        headers=headers,
    )

    assert unknown.status_code == 404
    assert inverted.status_code == 422
    assert half_baseline.status_code == 422
    assert client.get("/api/v1/diagnoses", params={"model": "x"}).status_code == 401
