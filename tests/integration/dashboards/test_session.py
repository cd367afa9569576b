"""The UI's login: a key once, then a signed session cookie checked on every page and callback."""

from __future__ import annotations

import datetime as dt
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from pydantic import ValidationError

from dashboards import session
from observe.api import security
from observe.auth import Scope, hash_key
from observe.db.engine import Database
from observe.pipeline.keys import create_key
from observe.storage.keys import revoke_api_key
from tests.conftest import make_settings
from tests.integration.api.helpers import app_client
from tests.integration.dashboards import seed
from tests.integration.dashboards.helpers import UPDATE_PATH, call, response_props, texts

OVERVIEW_WINDOW = ["-24h", ""]


def log_in(client: Any, key: str, next_path: str = "/ui/") -> Any:
    return client.post(
        "/ui/login", data={"api_key": key, "next": next_path}, follow_redirects=False
    )


def set_cookie_header(response: Any) -> str:
    [header] = [v for k, v in response.headers.multi_items() if k == "set-cookie"]
    return str(header)


# --- without a session ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "next_path"),
    [("/ui/", "/ui/"), ("/ui/latency?model=a&start=-7d", "/ui/latency?model=a&start=-7d")],
)
def test_pages_send_the_browser_to_the_login_form(client: Any, path: str, next_path: str) -> None:
    response = client.get(path, follow_redirects=False)

    assert response.status_code == 303
    location = urlparse(response.headers["location"])
    assert location.path == "/ui/login"
    assert parse_qs(location.query) == {"next": [next_path]}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", UPDATE_PATH),
        ("GET", "/ui/_dash-layout"),
        ("GET", "/ui/_dash-dependencies"),
    ],
)
def test_dash_requests_without_a_session_get_401(client: Any, method: str, path: str) -> None:
    response = client.request(method, path, json={} if method == "POST" else None)

    assert response.status_code == 401
    assert "log in again at /ui/login" in response.json()["detail"]


def test_an_api_key_header_is_no_session(client: Any, api_keys: dict[str, str]) -> None:
    response = client.get(
        "/ui/_dash-layout", headers={"Authorization": f"Bearer {api_keys['read']}"}
    )

    assert response.status_code == 401


def test_static_files_load_without_a_session(client: Any, api_keys: dict[str, str]) -> None:
    log_in(client, api_keys["read"])
    index = client.get("/ui/").text
    bundle = re.search(r'src="(/ui/_dash-component-suites/[^"]+)"', index)
    client.cookies.clear()

    assert bundle is not None
    assert client.get(bundle.group(1)).status_code == 200
    assert client.get("/ui/assets/observe.css").status_code == 200


# --- logging in -------------------------------------------------------------------------------


def test_login_form_carries_where_to_go_next(client: Any) -> None:
    response = client.get("/ui/login", params={"next": "/ui/infra?start=-7d"})

    assert response.status_code == 200
    assert 'name="api_key"' in response.text
    assert 'type="password"' in response.text
    assert 'name="next" value="/ui/infra?start=-7d"' in response.text


def test_a_read_key_logs_in_with_a_signed_http_only_cookie(
    client: Any, api_keys: dict[str, str]
) -> None:
    key = api_keys["read"]

    response = log_in(client, key, "/ui/latency?model=fraud-scorer")

    assert response.status_code == 303
    assert response.headers["location"] == "/ui/latency?model=fraud-scorer"
    header = set_cookie_header(response)
    assert header.startswith(f"{session.COOKIE_NAME}=")
    attributes = {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}
    assert {"httponly", "path", "samesite", "max-age"} <= attributes
    assert "secure" not in attributes  # plain http here
    assert "Path=/ui" in header
    assert "SameSite=lax" in header
    assert f"Max-Age={12 * 3600}" in header
    value = client.cookies[session.COOKIE_NAME]
    assert key not in value
    assert hash_key(key) not in value
    assert client.get("/ui/").status_code == 200


def test_an_admin_key_logs_in(client: Any, api_keys: dict[str, str]) -> None:
    assert log_in(client, api_keys["admin"]).status_code == 303
    assert client.get("/ui/_dash-layout").status_code == 200


@pytest.mark.parametrize(
    ("key_name", "message"),
    [
        ("", "Enter an API key."),
        ("unknown", "That API key is unknown or revoked."),
        ("ingest", "That API key lacks the read scope; use a read or admin key."),
    ],
)
def test_a_refused_login_says_why_and_sets_no_cookie(
    client: Any, api_keys: dict[str, str], key_name: str, message: str
) -> None:
    key = {"": "", "unknown": "obs_not-a-key"}.get(key_name) or api_keys.get(key_name, "")

    response = log_in(client, key)

    assert response.status_code == 401
    assert message in response.text
    assert "set-cookie" not in response.headers
    assert client.get("/ui/", follow_redirects=False).status_code == 303


@pytest.mark.parametrize(
    "next_path",
    ["https://evil.example/", "//evil.example/ui/", "/api/v1/models", "/ui\\@evil", "", None],
)
def test_login_never_redirects_outside_the_ui(
    client: Any, api_keys: dict[str, str], next_path: str | None
) -> None:
    data = {"api_key": api_keys["read"]} | ({"next": next_path} if next_path is not None else {})

    response = client.post("/ui/login", data=data, follow_redirects=False)

    assert response.headers["location"] == "/ui/"


def test_the_cookie_is_secure_when_the_ui_is_served_over_https(
    db: Database, tmp_path: Path, api_keys: dict[str, str]
) -> None:
    with app_client(db, tmp_path, public_url="https://observe.example.com") as client:
        header = set_cookie_header(log_in(client, api_keys["read"]))

    assert "; Secure" in header or "; secure" in header


def test_logout_clears_the_session(client: Any, api_keys: dict[str, str]) -> None:
    log_in(client, api_keys["read"])

    response = client.post("/ui/logout", follow_redirects=False)

    assert response.status_code == 303
    assert response.headers["location"] == "/ui/login"
    assert "Max-Age=0" in set_cookie_header(response)
    assert client.get("/ui/", follow_redirects=False).status_code == 303


# --- the session on callbacks -----------------------------------------------------------------


def test_callbacks_answer_with_a_session_and_not_without(
    db: Database, client: Any, api_keys: dict[str, str]
) -> None:
    seed.seed_incident(db)
    log_in(client, api_keys["read"])
    dependencies = client.get("/ui/_dash-dependencies").json()

    answer = call(client, "overview-status", OVERVIEW_WINDOW, dependencies=dependencies)
    client.cookies.clear()
    refused = call(client, "overview-status", OVERVIEW_WINDOW, dependencies=dependencies)

    assert answer.status_code == 200
    props = response_props(answer)
    assert props["overview-status"]["children"].startswith("2 models")
    table = texts(props["overview-table"]["children"])
    assert f"{seed.NUM_V1 + seed.NUM_V2:,}" in table
    assert "drifting" in table
    assert refused.status_code == 401


def test_a_tampered_or_foreign_cookie_is_refused(client: Any, api_keys: dict[str, str]) -> None:
    log_in(client, api_keys["read"])
    good = client.cookies[session.COOKIE_NAME]
    [principal] = [client.app.state.keys.verify(api_keys["read"])]
    foreign = session.SessionSigner("x" * 40, max_age_seconds=3600).issue(
        api_keys["read"], principal
    )
    client.cookies.clear()

    for value in (good[:-2] + ("AA" if not good.endswith("AA") else "BB"), foreign, "junk"):
        client.cookies.set(session.COOKIE_NAME, value, path="/ui")
        assert client.get("/ui/_dash-layout").status_code == 401, value


def test_a_revoked_key_stops_opening_the_ui_within_the_cache_time(
    db: Database, client: Any, api_keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    log_in(client, api_keys["read"])
    assert client.get("/ui/_dash-layout").status_code == 200
    with db.write_sessions.begin() as write:
        revoke_api_key(write, api_keys["read"][:12], now=dt.datetime.now(dt.UTC))
    still_cached = client.get("/ui/_dash-layout").status_code

    later = time.monotonic() + 31.0
    monkeypatch.setattr(security.time, "monotonic", lambda: later)

    assert still_cached == 200
    assert client.get("/ui/_dash-layout").status_code == 401
    assert client.get("/ui/", follow_redirects=False).status_code == 303


def test_sessions_expire(client: Any, api_keys: dict[str, str]) -> None:
    log_in(client, api_keys["read"])
    client.app.state.ui_signer = session.create_signer(
        make_settings(data_dir=client.app.state.settings.data_dir, ui_session_hours=0.0001)
    )
    time.sleep(1.1)

    assert client.get("/ui/_dash-layout").status_code == 401


def test_a_session_names_one_key_not_just_its_id(db: Database) -> None:
    key, row = create_key(db.write_sessions, name="ui", scopes=[Scope.READ])
    verifier = security.KeyVerifier(db.sessions)
    digest = hash_key(key)

    assert verifier.verify_id(row.id, digest[:16]) is not None
    assert verifier.verify_id(row.id, hash_key("another key")[:16]) is None
    assert verifier.verify_id(row.id, digest[:8]) is None  # too short to name a key
    assert verifier.verify_id(row.id + 1, digest[:16]) is None


# --- without authentication, and without the UI ------------------------------------------------


def test_with_auth_off_the_ui_is_open(db: Database, tmp_path: Path) -> None:
    seed.seed_incident(db)
    with app_client(db, tmp_path, auth_enabled=False) as client:
        page = client.get("/ui/latency", follow_redirects=False)
        layout = client.get("/ui/_dash-layout").json()
        answer = call(client, "overview-status", OVERVIEW_WINDOW)
        login = client.get("/ui/login", follow_redirects=False)

    assert page.status_code == 200
    assert "nav-logout" not in str(layout)
    assert answer.status_code == 200
    assert login.status_code == 303
    assert login.headers["location"] == "/ui/"


def test_the_ui_can_be_turned_off(db: Database, tmp_path: Path) -> None:
    with app_client(db, tmp_path, ui_enabled=False) as client:
        assert client.get("/ui/", follow_redirects=False).status_code == 404
        assert client.get("/healthz").status_code == 200


# --- the signing secret ------------------------------------------------------------------------


def test_the_secret_is_generated_once_and_kept_private(tmp_path: Path) -> None:
    settings = make_settings(data_dir=tmp_path / "state")

    first = session.load_secret(settings)
    second = session.load_secret(settings)

    path = tmp_path / "state" / session.SECRET_FILE
    assert first == second == path.read_text().strip()
    assert len(first) >= 48
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_processes_starting_together_share_one_secret(tmp_path: Path) -> None:
    settings = make_settings(data_dir=tmp_path / "fresh")

    with ThreadPoolExecutor(8) as pool:
        secrets_seen = set(pool.map(lambda _: session.load_secret(settings), range(32)))

    assert len(secrets_seen) == 1
    assert [p.name for p in (tmp_path / "fresh").iterdir()] == [session.SECRET_FILE]


def test_the_secret_setting_wins_and_survives_restarts(tmp_path: Path) -> None:
    secret = "s" * 40
    settings = make_settings(data_dir=tmp_path, ui_secret_key=secret)

    assert session.load_secret(settings) == secret
    assert not (tmp_path / session.SECRET_FILE).exists()


def test_a_broken_secret_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / session.SECRET_FILE).write_text("short")

    with pytest.raises(RuntimeError, match="delete it"):
        session.load_secret(make_settings(data_dir=tmp_path))


@pytest.mark.parametrize("secret", ["too-short", "changeme"])
def test_weak_secret_settings_are_refused(secret: str) -> None:
    with pytest.raises(ValidationError, match="at least 32 characters"):
        make_settings(ui_secret_key=secret)


def test_an_empty_secret_setting_means_generate_one() -> None:
    assert make_settings(ui_secret_key="").ui_secret_key is None
