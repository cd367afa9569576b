"""GET /api/v1/findings and /api/v1/findings/{id}."""

from __future__ import annotations

import datetime as dt
from typing import Any

from observe.db.engine import Database
from observe.storage import findings as finding_store
from tests.conftest import bearer
from tests.factories import T0, finding_in


def store(db: Database, findings: list[Any]) -> list[int]:
    with db.write_sessions.begin() as session:
        return finding_store.upsert_findings(session, findings, now=T0)


def test_lists_findings_with_filters(client: Any, db: Database, api_keys: dict[str, str]) -> None:
    store(db, [finding_in(), finding_in(dedupe_key="d", kind="drift", status="ok")])

    response = client.get(
        "/api/v1/findings",
        params={"model": "fraud-scorer", "kind": "drift"},
        headers=bearer(api_keys["read"]),
    )

    assert response.status_code == 200, response.text
    [item] = response.json()["items"]
    assert (item["kind"], item["status"], item["dedupe_key"]) == ("drift", "ok", "d")


def test_one_finding_by_id_with_its_details(
    client: Any, db: Database, api_keys: dict[str, str]
) -> None:
    [finding_id] = store(db, [finding_in()])

    found = client.get(f"/api/v1/findings/{finding_id}", headers=bearer(api_keys["read"]))
    missing = client.get("/api/v1/findings/999999", headers=bearer(api_keys["read"]))
    huge = client.get(f"/api/v1/findings/{2**70}", headers=bearer(api_keys["read"]))

    assert found.status_code == 200, found.text
    assert found.json()["details"] == {"before_ms": 40.0, "after_ms": 90.0}
    assert (missing.status_code, huge.status_code) == (404, 404)


def test_bad_filters_are_422_and_a_key_is_needed(client: Any, api_keys: dict[str, str]) -> None:
    headers = bearer(api_keys["read"])
    end = (T0 - dt.timedelta(hours=1)).isoformat()

    assert (
        client.get("/api/v1/findings", params={"status": "bad"}, headers=headers).status_code == 422
    )
    assert (
        client.get(
            "/api/v1/findings", params={"start": T0.isoformat(), "end": end}, headers=headers
        ).status_code
        == 422
    )
    assert client.get("/api/v1/findings").status_code == 401
    assert client.get("/api/v1/findings", headers=bearer(api_keys["ingest"])).status_code == 403
