"""GET /healthz (open), GET /metrics (Prometheus text, read scope), GET /openapi.json."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests import factories
from tests.conftest import bearer
from tests.integration.api.helpers import INGEST_PATHS, protected_routes


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text exposition, by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_healthz_answers_without_a_key(client: Any) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "database": "ok", "queued_items": 0}


def test_metrics_count_requests_and_ingested_items(client: Any, api_keys: dict[str, str]) -> None:
    headers = bearer(api_keys["ingest"])
    client.post("/api/v1/records", json=factories.records(5), headers=headers)
    client.post("/api/v1/records", json=factories.records(7), headers=headers)
    client.post("/api/v1/records", json=[{"model": "m"}], headers=headers)

    response = client.get("/metrics", headers=bearer(api_keys["read"]))

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)
    route = (("method", "POST"), ("route", "/api/v1/records"))
    assert found[("observe_http_requests_total", (*route, ("status", "200")))] == 2
    assert found[("observe_http_requests_total", (*route, ("status", "422")))] == 1
    items = (("kind", "records"),)
    assert found[("observe_ingested_items_total", (*items, ("result", "new")))] == 7
    assert found[("observe_ingested_items_total", (*items, ("result", "duplicate")))] == 5
    assert found[("observe_write_batches_total", (("result", "committed"),))] == 2
    assert found[("observe_write_queue_items", ())] == 0


def test_metrics_label_routes_by_template_not_by_path(
    client: Any, api_keys: dict[str, str]
) -> None:
    read = bearer(api_keys["read"])
    for name in ("a", "b", "c"):
        client.get(f"/api/v1/models/{name}", headers=read)

    found = samples(client.get("/metrics", headers=read).text)

    labels = (("method", "GET"), ("route", "/api/v1/models/{model}"), ("status", "404"))
    assert found[("observe_http_requests_total", labels)] == 3
    assert not any("/api/v1/models/a" in str(key) for key in found)


def test_openapi_describes_every_route_and_the_ingest_errors(client: Any) -> None:
    response = client.get("/openapi.json")

    assert response.status_code == 200, response.text
    paths = response.json()["paths"]
    for method, template in protected_routes(client.app):
        assert method.lower() in paths.get(template, {}), f"{method} {template} is undocumented"
    for path in INGEST_PATHS:
        documented = set(paths[path]["post"]["responses"])
        assert documented >= {"200", "400", "401", "403", "413", "415", "422", "429", "503"}, path
        assert "application/x-ndjson" in paths[path]["post"]["requestBody"]["content"], path
