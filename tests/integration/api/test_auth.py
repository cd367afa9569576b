"""API keys on every route: 401 without a valid key, 403 without the scope, admin may do all.

Routes are enumerated from the app itself, so a route added later is checked too. The scope a
route needs follows from its method: GET reads, POST ingests, anything else administers.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from observe.auth import Scope
from observe.db.engine import Database
from observe.pipeline.keys import create_key
from observe.storage.keys import revoke_api_key
from tests import factories
from tests.conftest import bearer
from tests.integration.api.helpers import app_client, concrete_path, protected_routes

KNOWN_ROUTES = {
    ("POST", "/api/v1/records"),
    ("POST", "/api/v1/labels"),
    ("POST", "/api/v1/events"),
    ("POST", "/api/v1/metrics"),
    ("POST", "/api/v1/kserve"),
    ("GET", "/api/v1/models"),
    ("GET", "/api/v1/models/{model}"),
    ("PUT", "/api/v1/models/{model}/slo"),
    ("GET", "/api/v1/models/{model}/latency"),
    ("GET", "/api/v1/records"),
    ("GET", "/metrics"),
}


def needed_scope(method: str) -> Scope:
    if method == "GET":
        return Scope.READ
    if method == "POST":
        return Scope.INGEST
    return Scope.ADMIN


def routes_of(client: Any) -> list[tuple[str, str]]:
    routes = protected_routes(client.app)
    assert set(routes) >= KNOWN_ROUTES, f"routes not found: {KNOWN_ROUTES - set(routes)}"
    return routes


def call(client: Any, method: str, template: str, headers: dict[str, str]) -> Any:
    return client.request(method, concrete_path(template), headers=headers)


def test_every_route_refuses_a_request_without_a_key(client: Any) -> None:
    wrong = {}
    for method, template in routes_of(client):
        response = call(client, method, template, {})
        if response.status_code != 401 or response.headers.get("www-authenticate") != "Bearer":
            wrong[f"{method} {template}"] = response.status_code
    assert not wrong, f"answered without a key: {wrong}"


def test_every_route_refuses_unknown_malformed_and_revoked_keys(client: Any, db: Database) -> None:
    revoked, row = create_key(db.write_sessions, name="old admin", scopes=[Scope.ADMIN])
    with db.write_sessions.begin() as session:
        assert revoke_api_key(session, str(row.id), now=dt.datetime.now(dt.UTC))
    bad_headers = {
        "unknown bearer": bearer("obs_" + "x" * 43),
        "unknown x-api-key": {"X-API-Key": "obs_unknown"},
        "revoked bearer": bearer(revoked),
        "revoked x-api-key": {"X-API-Key": revoked},
        "basic scheme": {"Authorization": f"Basic {revoked}"},
        "empty bearer": {"Authorization": "Bearer "},
    }
    wrong = {}
    for method, template in routes_of(client):
        for name, headers in bad_headers.items():
            status = call(client, method, template, headers).status_code
            if status != 401:
                wrong[f"{method} {template} ({name})"] = status
    assert not wrong, f"accepted an invalid key: {wrong}"


def test_every_route_refuses_a_key_without_its_scope(client: Any, api_keys: dict[str, str]) -> None:
    wrong = {}
    for method, template in routes_of(client):
        for scope in set(Scope) - {needed_scope(method), Scope.ADMIN}:
            response = call(client, method, template, bearer(api_keys[scope.value]))
            if response.status_code != 403:
                wrong[f"{method} {template} with {scope.value}"] = response.status_code
    assert not wrong, f"allowed without the scope: {wrong}"


def test_every_route_accepts_its_scope_and_admin_in_either_header(
    client: Any, api_keys: dict[str, str]
) -> None:
    wrong = {}
    for method, template in routes_of(client):
        for scope in {needed_scope(method), Scope.ADMIN}:
            key = api_keys[scope.value]
            for name, headers in {
                "bearer": bearer(key),
                "lower-case bearer": {"Authorization": f"bearer {key}"},
                "x-api-key": {"X-API-Key": key},
            }.items():
                status = call(client, method, template, headers).status_code
                if status in (401, 403) or status >= 500:
                    wrong[f"{method} {template} with {scope.value} in {name}"] = status
    assert not wrong, f"refused a fitting key: {wrong}"


def test_a_key_with_several_scopes_has_each_of_them(client: Any, db: Database) -> None:
    key, _ = create_key(db.write_sessions, name="pipeline", scopes=[Scope.INGEST, Scope.READ])

    assert client.get("/api/v1/models", headers=bearer(key)).status_code == 200
    assert client.post("/api/v1/records", json=[], headers=bearer(key)).status_code == 422
    assert client.put("/api/v1/models/m/slo", json={}, headers=bearer(key)).status_code == 403


def test_without_auth_no_key_is_needed(db: Database, tmp_path: Path) -> None:
    with app_client(db, tmp_path, auth_enabled=False) as client:
        refused = {
            f"{method} {template}": status
            for method, template in routes_of(client)
            if (status := call(client, method, template, {}).status_code) in (401, 403)
            or status >= 500
        }
        ingested = client.post("/api/v1/records", json=[factories.record()])
        slo = client.put("/api/v1/models/fraud-scorer/slo", json={"error_rate_pct": 1.0})

    assert not refused, f"auth_enabled=False still refused: {refused}"
    assert ingested.status_code == 200, ingested.text
    assert slo.status_code == 200, slo.text


def test_health_and_api_docs_are_open(client: Any) -> None:
    for path in ("/healthz", "/openapi.json", "/docs"):
        assert client.get(path).status_code == 200, path
