"""API key checks for every route: `Authorization: Bearer KEY` or `X-API-Key: KEY`."""

from __future__ import annotations

import hmac
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from observe.api.errors import ApiError
from observe.auth import Scope, allows, hash_key, parse_scopes
from observe.pipeline.writer import utc_now
from observe.storage import keys as key_store


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id and name, or anonymous when auth is off."""

    key_id: int | None
    name: str
    scopes: frozenset[Scope]


#: Hex digits of a key's digest a session must carry to name that key.
MIN_DIGEST_PREFIX = 16

ANONYMOUS = Principal(None, "anonymous (auth disabled)", frozenset(Scope))


class KeyVerifier:
    """Looks keys up by digest, caching answers (positive and negative) for `ttl_seconds`.

    A revoked key stops working within `ttl_seconds`. Keys seen are remembered so that a
    periodic job can record when each was last used, off the request path.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        ttl_seconds: float = 30.0,
        max_entries: int = 10_000,
    ) -> None:
        self._sessions = sessions
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._cache: OrderedDict[str, tuple[Principal | None, float]] = OrderedDict()
        self._used: set[int] = set()
        self._lock = threading.Lock()

    def verify(self, key: str) -> Principal | None:
        digest = hash_key(key)
        return self._cached(digest, lambda: self._load(digest))

    def verify_id(self, key_id: int, digest_prefix: str) -> Principal | None:
        """The key with this id, if it is active and its digest starts with `digest_prefix`.

        For sessions that must not hold the key itself (the UI's cookie): the prefix ties the
        session to that very key, so a database rebuilt with new keys under old ids does not
        honour old sessions. Cached and revoked like `verify`.
        """
        cache_key = f"id:{key_id}:{digest_prefix}"
        return self._cached(cache_key, lambda: self._load_id(key_id, digest_prefix))

    def _cached(self, cache_key: str, load: Callable[[], Principal | None]) -> Principal | None:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(cache_key)
        if cached is None or cached[1] < now:
            cached = (load(), now + self._ttl)
            with self._lock:
                self._cache[cache_key] = cached
                self._cache.move_to_end(cache_key)
                while len(self._cache) > self._max_entries:
                    self._cache.popitem(last=False)
        principal = cached[0]
        if principal is not None and principal.key_id is not None:
            with self._lock:
                self._used.add(principal.key_id)
        return principal

    def _load(self, digest: str) -> Principal | None:
        with self._sessions() as session:
            key = key_store.find_api_key(session, digest)
            if key is None or key.revoked_at is not None:
                return None
            return Principal(key.id, key.name, parse_scopes(key.scopes))

    def _load_id(self, key_id: int, digest_prefix: str) -> Principal | None:
        if len(digest_prefix) < MIN_DIGEST_PREFIX:
            return None
        with self._sessions() as session:
            key = key_store.get_api_key(session, key_id)
            if key is None or key.revoked_at is not None:
                return None
            if not hmac.compare_digest(key.key_hash[: len(digest_prefix)], digest_prefix):
                return None
            return Principal(key.id, key.name, parse_scopes(key.scopes))

    def forget(self) -> None:
        """Drop cached answers (after keys change in this process)."""
        with self._lock:
            self._cache.clear()

    def record_usage(self, write_sessions: sessionmaker[Session]) -> int:
        """Store last_used_at for keys used since the previous call; returns how many."""
        with self._lock:
            used, self._used = self._used, set()
        if used:
            now = utc_now()
            with write_sessions.begin() as session:
                for key_id in sorted(used):
                    key_store.touch_api_key(session, key_id, now=now)
        return len(used)


def extract_key(request: Request, *, allow_query: bool = False) -> str | None:
    authorization = request.headers.get("authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    api_key = request.headers.get("x-api-key", "").strip()
    if not api_key and allow_query:
        api_key = request.query_params.get(QUERY_KEY_PARAMETER, "").strip()
    return api_key or None


#: The query parameter that may carry the key where a sender cannot set headers (the KServe
#: payload logger); access logs show it as "***".
QUERY_KEY_PARAMETER = "api_key"
_QUERY_KEY = re.compile(rf"([?&]{QUERY_KEY_PARAMETER}=)[^&\s\"]*")


class RedactQueryKeys(logging.Filter):
    """Replaces the value of ``api_key=`` in uvicorn's access log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(
            isinstance(arg, str) and QUERY_KEY_PARAMETER in arg for arg in record.args
        ):
            record.args = tuple(
                _QUERY_KEY.sub(r"\1***", arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        return True


def require(scope: Scope, *, allow_query_key: bool = False) -> Callable[..., Principal]:
    """Route dependency: the caller's key must grant `scope` (admin grants everything).

    `allow_query_key` also accepts the key as the ``api_key`` query parameter.
    """

    def check(request: Request) -> Principal:
        if not request.app.state.settings.auth_enabled:
            return ANONYMOUS
        key = extract_key(request, allow_query=allow_query_key)
        challenge = {"WWW-Authenticate": "Bearer"}
        if key is None:
            ways = "Authorization: Bearer KEY or X-API-Key: KEY"
            if allow_query_key:
                ways = f"Authorization: Bearer KEY, X-API-Key: KEY or ?{QUERY_KEY_PARAMETER}=KEY"
            raise ApiError(401, f"missing API key: send {ways}", headers=challenge)
        principal = request.app.state.keys.verify(key)
        if principal is None:
            raise ApiError(401, "invalid or revoked API key", headers=challenge)
        if not allows(principal.scopes, scope):
            raise ApiError(403, f"this API key lacks the {scope.value!r} scope")
        return principal

    return check


def requires(scope: Scope, *, allow_query_key: bool = False) -> Any:
    """`dependencies=[requires(Scope.READ)]` for routes that do not need the principal."""
    return Depends(require(scope, allow_query_key=allow_query_key))
