"""UI logins: an API key once, then a signed session cookie checked on every UI request.

The cookie holds the key's id and the first hex digits of its digest, signed with a server
secret and stamped with the time of login; never the key. Each request re-checks the key
through the API's `KeyVerifier`, so a revoked key stops opening the UI within the verifier's
cache time, as it does for the API. The cookie is HttpOnly, SameSite=Lax (links shared from
elsewhere still open the page), limited to /ui, and Secure when the UI is served over https.
"""

from __future__ import annotations

import contextlib
import html
import logging
import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from observe.api.security import ANONYMOUS, MIN_DIGEST_PREFIX, Principal
from observe.auth import Scope as KeyScope
from observe.auth import allows, hash_key
from observe.config import Settings

log = logging.getLogger(__name__)

UI_PREFIX = "/ui"
COOKIE_NAME = "observe_session"
SECRET_FILE = "ui_secret_key"
SALT = "observe-ui-session"
#: Paths under /ui that load without a session: the Dash renderer, component bundles,
#: stylesheets and the icon carry no data.
PUBLIC_PREFIXES = ("/_dash-component-suites/", "/assets/", "/_favicon.ico")


@dataclass(frozen=True)
class SessionClaims:
    key_id: int
    digest_prefix: str


class SessionSigner:
    """Signs and checks session tokens; a token older than `max_age_seconds` is refused."""

    def __init__(self, secret: str, *, max_age_seconds: float) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt=SALT)
        self.max_age_seconds = max_age_seconds

    def issue(self, key: str, principal: Principal) -> str:
        assert principal.key_id is not None
        return str(
            self._serializer.dumps({"id": principal.key_id, "h": hash_key(key)[:MIN_DIGEST_PREFIX]})
        )

    def read(self, token: str) -> SessionClaims | None:
        try:
            data = self._serializer.loads(token, max_age=int(self.max_age_seconds))
        except BadSignature:  # includes SignatureExpired
            return None
        if not isinstance(data, dict):
            return None
        key_id, prefix = data.get("id"), data.get("h")
        if not isinstance(key_id, int) or not isinstance(prefix, str):
            return None
        return SessionClaims(key_id, prefix)


def load_secret(settings: Settings) -> str:
    """The cookie-signing secret: the setting, else a random one kept in the data directory.

    The file is created once, readable by its owner only, and appears with its content in one
    step (written aside, then linked into place), so worker processes starting together all
    read the same secret; logins survive restarts.
    """
    if settings.ui_secret_key is not None:
        return settings.ui_secret_key.get_secret_value()
    path = settings.data_dir / SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        _create_secret_file(path)
    return _read_secret(path)


def _create_secret_file(path: Path) -> None:
    descriptor, temporary = tempfile.mkstemp(prefix=f".{SECRET_FILE}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as file:  # mkstemp makes it 0600
            file.write(secrets.token_urlsafe(48))
        with contextlib.suppress(FileExistsError):  # another process was first: use theirs
            os.link(temporary, path)
    finally:
        os.unlink(temporary)


def _read_secret(path: Path) -> str:
    secret = path.read_text(encoding="ascii").strip()
    if len(secret) < 32:
        raise RuntimeError(f"{path} holds no usable secret: delete it to make a new one")
    return secret


def create_signer(settings: Settings) -> SessionSigner:
    return SessionSigner(load_secret(settings), max_age_seconds=settings.ui_session_hours * 3600)


# --- checking requests -------------------------------------------------------------------------


def session_principal(app_state: Any, cookies: dict[str, str]) -> Principal | None:
    """Who the session cookie belongs to, or None (no, bad, expired or revoked session).

    Blocking (the key check may read the database): call from a worker thread.
    """
    settings: Settings = app_state.settings
    if not settings.auth_enabled:
        return ANONYMOUS
    token = cookies.get(COOKIE_NAME)
    claims = app_state.ui_signer.read(token) if token else None
    if claims is None:
        return None
    principal: Principal | None = app_state.keys.verify_id(claims.key_id, claims.digest_prefix)
    if principal is None or not allows(principal.scopes, KeyScope.READ):
        return None
    return principal


class SessionGate:
    """ASGI app in front of the UI: static files pass, everything else needs a session.

    Without one, a page request is redirected to the login form (which brings the user back)
    and any other request, such as a Dash callback, gets 401.
    """

    def __init__(self, app: ASGIApp, api_state: Any) -> None:
        self.app = app
        self.api_state = api_state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _is_public(scope):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        principal = await run_in_threadpool(session_principal, self.api_state, request.cookies)
        if principal is not None:
            await self.app(scope, receive, send)
            return
        await _refusal(request, scope)(scope, receive, send)


def _is_public(scope: Scope) -> bool:
    path = scope["path"][len(scope.get("root_path", "")) :]
    return path.startswith(PUBLIC_PREFIXES)


def _refusal(request: Request, scope: Scope) -> Response:
    path = scope["path"][len(scope.get("root_path", "")) :]
    if request.method == "GET" and not path.startswith("/_dash-"):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(login_url(target), status_code=303)
    return JSONResponse(
        {"detail": "not logged in, or the session expired: log in again at /ui/login"},
        status_code=401,
    )


def login_url(next_path: str) -> str:
    from urllib.parse import urlencode

    return f"{UI_PREFIX}/login?{urlencode({'next': next_path})}"


def safe_next(value: str | None) -> str:
    """Where to go after login: a path inside the UI, never another site."""
    if not value or not value.startswith(f"{UI_PREFIX}/") or value.startswith("//"):
        return f"{UI_PREFIX}/"
    if any(ch in value for ch in "\\\r\n\t"):
        return f"{UI_PREFIX}/"
    return value


# --- login and logout --------------------------------------------------------------------------

router = APIRouter(prefix=UI_PREFIX, include_in_schema=False)

_LOGIN_PAGE = Template(
    """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Log in · observe</title>
<link rel="stylesheet" href="/ui/assets/observe.css"></head>
<body class="login-body">
<main class="login-card">
<h1>observe</h1>
<p>Log in with an API key that has the <code>read</code> or <code>admin</code> scope
(<code>observe keys create --scope read</code>).</p>
$message
<form method="post" action="/ui/login" id="login-form">
<input type="hidden" name="next" value="$next">
<label for="login-key">API key</label>
<input type="password" id="login-key" name="api_key" autocomplete="current-password"
 autofocus required>
<button type="submit" id="login-submit">Log in</button>
</form>
</main></body></html>
"""
)


def render_login(next_path: str, message: str = "") -> str:
    banner = f'<p class="login-error" role="alert">{html.escape(message)}</p>' if message else ""
    return _LOGIN_PAGE.substitute(message=banner, next=html.escape(safe_next(next_path)))


@router.get("/login", response_class=HTMLResponse)
def show_login(request: Request, next_path: str = Query(f"{UI_PREFIX}/", alias="next")) -> Response:
    if not request.app.state.settings.auth_enabled:
        return RedirectResponse(safe_next(next_path), status_code=303)
    return HTMLResponse(render_login(next_path))


@router.post("/login", response_class=HTMLResponse)
def log_in(
    request: Request,
    api_key: str = Form(""),
    next_path: str = Form(f"{UI_PREFIX}/", alias="next"),
) -> Response:
    """Check the key as the API does; on success set the session cookie and go on."""
    state = request.app.state
    if not state.settings.auth_enabled:
        return RedirectResponse(safe_next(next_path), status_code=303)
    key = api_key.strip()
    principal = state.keys.verify(key) if key else None
    problem = _login_problem(key, principal)
    if problem:
        return HTMLResponse(render_login(next_path, problem), status_code=401)
    assert principal is not None
    response = RedirectResponse(safe_next(next_path), status_code=303)
    response.set_cookie(
        COOKIE_NAME,
        state.ui_signer.issue(key, principal),
        max_age=int(state.ui_signer.max_age_seconds),
        path=UI_PREFIX,
        secure=_is_https(request, state.settings),
        httponly=True,
        samesite="lax",
    )
    log.info("UI login with key %s (%s)", principal.key_id, principal.name)
    return response


def _login_problem(key: str, principal: Principal | None) -> str:
    if not key:
        return "Enter an API key."
    if principal is None:
        return "That API key is unknown or revoked."
    if not allows(principal.scopes, KeyScope.READ):
        return "That API key lacks the read scope; use a read or admin key."
    return ""


@router.post("/logout")
def log_out(request: Request) -> Response:
    response = RedirectResponse(f"{UI_PREFIX}/login", status_code=303)
    response.delete_cookie(
        COOKIE_NAME,
        path=UI_PREFIX,
        secure=_is_https(request, request.app.state.settings),
        httponly=True,
        samesite="lax",
    )
    return response


def _is_https(request: Request, settings: Settings) -> bool:
    return request.url.scheme == "https" or settings.public_url.startswith("https://")
