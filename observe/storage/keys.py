"""API keys at rest: digests, scopes and lifecycle. Plain keys never reach this module."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from observe.db.models import ApiKey


def insert_api_key(
    session: Session, *, name: str, prefix: str, key_hash: str, scopes: list[str], now: dt.datetime
) -> ApiKey:
    key = ApiKey(
        name=name, prefix=prefix, key_hash=key_hash, scopes=",".join(sorted(scopes)), created_at=now
    )
    session.add(key)
    session.flush()
    return key


def find_api_key(session: Session, key_hash: str) -> ApiKey | None:
    """The key with this digest, revoked or not."""
    return session.scalar(select(ApiKey).where(ApiKey.key_hash == key_hash))


def get_api_key(session: Session, key_id: int) -> ApiKey | None:
    """The key with this id, revoked or not."""
    return session.get(ApiKey, key_id)


def list_api_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def count_api_keys(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(ApiKey)) or 0


def revoke_api_key(session: Session, id_or_prefix: str, *, now: dt.datetime) -> list[ApiKey]:
    """Revoke the key with this id or display prefix; returns the keys revoked now."""
    condition = ApiKey.prefix == id_or_prefix
    if id_or_prefix.isdigit():
        condition = or_(condition, ApiKey.id == int(id_or_prefix))
    keys = list(session.scalars(select(ApiKey).where(condition, ApiKey.revoked_at.is_(None))))
    for key in keys:
        key.revoked_at = now
    session.flush()
    return keys


def touch_api_key(session: Session, key_id: int, *, now: dt.datetime) -> None:
    session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=now))
