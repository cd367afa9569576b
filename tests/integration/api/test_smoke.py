from __future__ import annotations

from typing import Any

from tests import factories
from tests.conftest import bearer


def test_ingest_then_read_back(client: Any, api_keys: dict[str, str]) -> None:
    response = client.post(
        "/api/v1/records", json=factories.records(50), headers=bearer(api_keys["ingest"])
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 50, "new": 50, "duplicates": 0}
    page = client.get(
        "/api/v1/records",
        params={"model": "fraud-scorer", "start": "2026-11-16T00:00:00Z", "limit": 10},
        headers=bearer(api_keys["read"]),
    )
    assert page.status_code == 200, page.text
    assert len(page.json()["items"]) == 10
