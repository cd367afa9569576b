"""Creating, listing and revoking API keys (the plain key is returned once, never stored)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from observe.auth import Scope, display_prefix, generate_key, hash_key
from observe.db.models import ApiKey
from observe.storage import keys as key_store

BOOTSTRAP_KEY_NAME = "bootstrap admin"


def create_key(
    write_sessions: sessionmaker[Session],
    *,
    name: str,
    scopes: Iterable[Scope],
    key: str | None = None,
) -> tuple[str, ApiKey]:
    """Store a new key (random unless given) and return it in plain text with its row."""
    plain = key or generate_key()
    with write_sessions.begin() as session:
        row = key_store.insert_api_key(
            session,
            name=name,
            prefix=display_prefix(plain),
            key_hash=hash_key(plain),
            scopes=[scope.value for scope in scopes],
            now=dt.datetime.now(dt.UTC),
        )
    return plain, row


def ensure_admin_key(
    write_sessions: sessionmaker[Session], *, configured: str | None
) -> str | None:
    """Make sure an admin key exists on first start.

    With `configured` (the bootstrap_admin_key setting) that key is installed if it is not
    stored yet, and None is returned. Otherwise, when the database has no keys at all, a random
    admin key is created and returned so the caller can show it once.
    """
    with write_sessions() as session:
        if configured is not None:
            if key_store.find_api_key(session, hash_key(configured)) is not None:
                return None
        elif key_store.count_api_keys(session) > 0:
            return None
    try:
        plain, _ = create_key(
            write_sessions, name=BOOTSTRAP_KEY_NAME, scopes=[Scope.ADMIN], key=configured
        )
    except IntegrityError:
        if configured is None:
            raise
        return None  # another process starting at the same time installed it first
    return None if configured is not None else plain
