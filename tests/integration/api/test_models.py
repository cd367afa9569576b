"""GET /api/v1/models, GET /api/v1/models/{model}, PUT /api/v1/models/{model}/slo.

Counts must match what was ingested exactly; percentiles must be within 1% of numpy's "lower"
quantile of the latencies sent.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest

from tests import factories
from tests.conftest import bearer
from tests.integration.api.helpers import lower_percentile

MODEL = "fraud-scorer"
T0 = factories.T0
WINDOW = {"start": "2026-11-16T11:30:00Z", "end": "2026-11-16T13:00:00Z"}


def traffic() -> dict[str, list[dict[str, Any]]]:
    """Two versions of MODEL (v2 slower), every 10th v1 and every 4th v2 request an error."""
    v1 = factories.records(240, seed=1, prefix="v1")
    v2 = factories.records(120, seed=2, prefix="v2", spacing_seconds=2.0, model_version="v2")
    for item in v2:
        item["latency_ms"] = round(item["latency_ms"] * 3, 3)
    for items, every in ((v1, 10), (v2, 4)):
        for item in items[::every]:
            item["status"] = "error"
    return {"v1": v1, "v2": v2}


def ingest(client: Any, key: str, items: list[dict[str, Any]]) -> None:
    response = client.post("/api/v1/records", json=items, headers=bearer(key))
    assert response.status_code == 200, response.text


def assert_matches(stats: dict[str, Any], items: list[dict[str, Any]]) -> None:
    """Counts exact, percentiles within 1%, of the stats reported for `items`."""
    latencies = [item["latency_ms"] for item in items]
    num_errors = sum(item.get("status") == "error" for item in items)
    assert stats["num_requests"] == len(items)
    assert stats["num_errors"] == num_errors
    assert stats["error_rate"] == pytest.approx(num_errors / len(items))
    assert stats["mean_ms"] == pytest.approx(float(np.mean(latencies)), rel=1e-9)
    for percentile in (50, 95, 99):
        expected = lower_percentile(latencies, percentile)
        assert stats[f"p{percentile}"] == pytest.approx(expected, rel=0.01), percentile


def get_models(client: Any, key: str, **params: Any) -> dict[str, Any]:
    response = client.get("/api/v1/models", params=params, headers=bearer(key))
    assert response.status_code == 200, response.text
    return response.json()


def test_models_report_traffic_errors_and_percentiles_of_what_was_ingested(
    client: Any, api_keys: dict[str, str]
) -> None:
    sent = traffic()
    ingest(client, api_keys["ingest"], sent["v1"] + sent["v2"])

    body = get_models(client, api_keys["read"], **WINDOW)

    (model,) = body["models"]
    assert model["name"] == MODEL
    assert_matches(model, sent["v1"] + sent["v2"])
    versions = {version["model_version"]: version for version in model["versions"]}
    assert sorted(versions) == ["v1", "v2"]
    for name, items in sent.items():
        assert_matches(versions[name], items)
        first_seen = dt.datetime.fromisoformat(versions[name]["first_seen_at"])
        last_seen = dt.datetime.fromisoformat(versions[name]["last_seen_at"])
        assert first_seen == dt.datetime.fromisoformat(items[0]["timestamp"])
        assert last_seen == dt.datetime.fromisoformat(items[-1]["timestamp"])


def test_traffic_split_over_several_batches_adds_up(client: Any, api_keys: dict[str, str]) -> None:
    items = traffic()["v1"]
    for start in range(0, len(items), 70):
        ingest(client, api_keys["ingest"], items[start : start + 70])

    (model,) = get_models(client, api_keys["read"], **WINDOW)["models"]

    assert_matches(model, items)


def test_only_traffic_inside_the_window_counts(client: Any, api_keys: dict[str, str]) -> None:
    inside = factories.records(30, prefix="in")
    before = factories.records(10, prefix="early", start=T0 - dt.timedelta(hours=3))
    after = factories.records(10, prefix="late", start=T0 + dt.timedelta(hours=3))
    ingest(client, api_keys["ingest"], inside + before + after)

    body = get_models(client, api_keys["read"], **WINDOW)

    assert body["start"].startswith("2026-11-16T11:30:00")
    assert body["end"].startswith("2026-11-16T13:00:00")
    assert_matches(body["models"][0], inside)


def test_the_default_window_is_the_last_24_hours(client: Any, api_keys: dict[str, str]) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    recent = factories.records(20, prefix="recent", start=now - dt.timedelta(hours=2))
    old = factories.records(20, prefix="old", start=now - dt.timedelta(days=3))
    ingest(client, api_keys["ingest"], recent + old)

    (model,) = get_models(client, api_keys["read"])["models"]

    assert_matches(model, recent)


def test_one_model_reads_the_same_as_in_the_list(client: Any, api_keys: dict[str, str]) -> None:
    sent = traffic()
    ingest(client, api_keys["ingest"], sent["v1"] + sent["v2"])
    ingest(client, api_keys["ingest"], factories.records(5, prefix="r", model="ranker"))

    listed = get_models(client, api_keys["read"], **WINDOW)["models"]
    one = client.get(f"/api/v1/models/{MODEL}", params=WINDOW, headers=bearer(api_keys["read"]))

    unknown = client.get("/api/v1/models/nobody", headers=bearer(api_keys["read"]))

    assert [model["name"] for model in listed] == ["fraud-scorer", "ranker"]
    assert one.status_code == 200, one.text
    assert one.json() == listed[0]
    assert_matches(one.json(), sent["v1"] + sent["v2"])
    assert unknown.status_code == 404, unknown.text
    assert "nobody" in unknown.json()["detail"]


def test_an_slo_is_stored_and_measured(client: Any, api_keys: dict[str, str]) -> None:
    sent = traffic()
    everything = sent["v1"] + sent["v2"]
    ingest(client, api_keys["ingest"], everything)
    latencies = [item["latency_ms"] for item in everything]
    p90 = lower_percentile(latencies, 90)
    error_rate_pct = (
        100 * sum(item.get("status") == "error" for item in everything) / len(everything)
    )
    slo = {"latency_percentile": 90, "latency_ms": round(p90 * 0.8, 1), "error_rate_pct": 20.0}

    stored = client.put(f"/api/v1/models/{MODEL}/slo", json=slo, headers=bearer(api_keys["admin"]))
    model = client.get(f"/api/v1/models/{MODEL}", params=WINDOW, headers=bearer(api_keys["read"]))

    assert stored.status_code == 200, stored.text
    assert {k: stored.json()[k] for k in slo} == slo
    assert stored.json()["updated_at"] is not None
    assert {k: model.json()["slo"][k] for k in slo} == slo
    status = model.json()["slo_status"]
    assert status["latency_ms"] == pytest.approx(p90, rel=0.01)
    assert status["latency_ok"] is False
    assert status["error_rate_pct"] == pytest.approx(error_rate_pct)
    assert status["error_rate_ok"] is True
    listed = get_models(client, api_keys["read"], **WINDOW)["models"][0]
    assert listed["slo"] == model.json()["slo"]
    assert listed["slo_status"] == status


def test_an_slo_that_is_met_reads_ok_and_clearing_it_reads_null(
    client: Any, api_keys: dict[str, str]
) -> None:
    items = traffic()["v1"]
    ingest(client, api_keys["ingest"], items)
    p99 = lower_percentile([item["latency_ms"] for item in items], 99)
    admin, read = bearer(api_keys["admin"]), bearer(api_keys["read"])
    met = {"latency_percentile": 99, "latency_ms": round(p99 * 1.1, 1), "error_rate_pct": 5.0}

    client.put(f"/api/v1/models/{MODEL}/slo", json=met, headers=admin)
    status_met = client.get(f"/api/v1/models/{MODEL}", params=WINDOW, headers=read).json()
    cleared = client.put(f"/api/v1/models/{MODEL}/slo", json={}, headers=admin)
    status_cleared = client.get(f"/api/v1/models/{MODEL}", params=WINDOW, headers=read).json()

    assert status_met["slo_status"]["latency_ok"] is True
    assert status_met["slo_status"]["error_rate_ok"] is False  # 10% errors against 5%
    assert cleared.status_code == 200, cleared.text
    assert status_cleared["slo"]["latency_ms"] is None
    assert status_cleared["slo"]["error_rate_pct"] is None
    assert status_cleared["slo_status"]["latency_ok"] is None
    assert status_cleared["slo_status"]["error_rate_ok"] is None


def test_an_slo_may_be_set_before_any_traffic(client: Any, api_keys: dict[str, str]) -> None:
    slo = {"latency_percentile": 95, "latency_ms": 250.0, "error_rate_pct": 1.0}

    stored = client.put("/api/v1/models/new-model/slo", json=slo, headers=bearer(api_keys["admin"]))
    model = client.get("/api/v1/models/new-model", headers=bearer(api_keys["read"]))

    assert stored.status_code == 200, stored.text
    assert model.status_code == 200, model.text
    body = model.json()
    assert (body["num_requests"], body["num_errors"], body["p95"]) == (0, 0, None)
    assert body["slo"]["latency_ms"] == 250.0
    assert body["slo_status"]["latency_ok"] is None
    assert body["slo_status"]["error_rate_ok"] is None


INVALID_SLOS = {
    "latency-without-percentile": {"latency_ms": 250},
    "percentile-without-latency": {"latency_percentile": 95},
    "percentile-over-100": {"latency_percentile": 150, "latency_ms": 250},
    "percentile-zero": {"latency_percentile": 0, "latency_ms": 250},
    "negative-latency": {"latency_percentile": 95, "latency_ms": -1},
    "negative-error-rate": {"error_rate_pct": -1},
    "error-rate-over-100": {"error_rate_pct": 101},
    "error-rate-word": {"error_rate_pct": "low"},
    "not-an-object": [95, 250],
}


def test_an_invalid_slo_is_refused_and_not_stored(client: Any, api_keys: dict[str, str]) -> None:
    wrong = {}
    for name, slo in INVALID_SLOS.items():
        response = client.put(
            f"/api/v1/models/{MODEL}/slo", json=slo, headers=bearer(api_keys["admin"])
        )
        if response.status_code != 422 or not isinstance(response.json()["detail"], str):
            wrong[name] = f"{response.status_code}: {response.text[:200]}"
    not_json = client.put(
        f"/api/v1/models/{MODEL}/slo",
        content=b"{not json",
        headers={**bearer(api_keys["admin"]), "Content-Type": "application/json"},
    )

    assert not wrong, wrong
    assert 400 <= not_json.status_code < 500, not_json.text
    missing = client.get(f"/api/v1/models/{MODEL}", headers=bearer(api_keys["read"]))
    assert missing.status_code == 404, "a refused SLO must not register the model"


def test_an_slo_must_be_finite(client: Any, api_keys: dict[str, str]) -> None:
    wrong = {}
    for raw in ("Infinity", "-Infinity", "NaN", "1e400"):
        body = f'{{"latency_percentile": 95, "latency_ms": {raw}, "error_rate_pct": 1}}'
        response = client.put(
            f"/api/v1/models/{MODEL}/slo",
            content=body.encode(),
            headers={**bearer(api_keys["admin"]), "Content-Type": "application/json"},
        )
        if response.status_code not in (400, 422):
            wrong[raw] = f"{response.status_code}: {response.text[:200]}"

    assert not wrong, f"non-finite SLOs accepted: {wrong}"


BAD_WINDOWS = {
    "word": {"start": "yesterday"},
    "bad-month": {"end": "2026-13-01T00:00:00Z"},
    "start-after-end": {"start": "2026-11-16T13:00:00Z", "end": "2026-11-16T12:00:00Z"},
    "bad-duration": {"start": "-3x"},
    "huge-epoch": {"start": "1e30"},
    "nan": {"start": "nan"},
    "before-1970": {"start": "1969-12-31T00:00:00Z"},
    "past-9999-in-utc": {"end": "9999-12-31T23:59:59-05:00"},
    "nul": {"start": "2026-11-16T00:00:00Z\x00"},
    # Valid times, but no whole minute can end after them.
    "last-minute-of-9999": {"start": "9999-12-31T23:00:00Z", "end": "9999-12-31T23:59:59Z"},
}


def test_bad_window_parameters_are_422(client: Any, api_keys: dict[str, str]) -> None:
    ingest(client, api_keys["ingest"], factories.records(3))
    wrong = {}
    for name, params in BAD_WINDOWS.items():
        for path in ("/api/v1/models", f"/api/v1/models/{MODEL}"):
            response = client.get(path, params=params, headers=bearer(api_keys["read"]))
            if response.status_code != 422:
                wrong[f"{name} {path}"] = f"{response.status_code}: {response.text[:200]}"

    assert not wrong, wrong


def test_nul_characters_in_the_model_name_are_422(client: Any, api_keys: dict[str, str]) -> None:
    path = "/api/v1/models/fraud%00scorer"

    read = client.get(path, headers=bearer(api_keys["read"]))
    slo = client.put(f"{path}/slo", json={"error_rate_pct": 1}, headers=bearer(api_keys["admin"]))

    assert read.status_code == 422, read.text
    assert slo.status_code == 422, slo.text
