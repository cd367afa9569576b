"""API keys: generation, hashing and scopes. Keys are random; only their SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets
from enum import StrEnum

KEY_PREFIX = "obs_"
DISPLAY_PREFIX_LENGTH = 12


class Scope(StrEnum):
    """What a key may do. `admin` may do everything."""

    INGEST = "ingest"
    READ = "read"
    ADMIN = "admin"


def generate_key() -> str:
    """A new random key (256 bits of entropy)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """SHA-256 hex digest; keys are random enough that a slow password hash adds nothing."""
    return hashlib.sha256(key.encode()).hexdigest()


def display_prefix(key: str) -> str:
    """The start of a key, enough to recognise it in `observe keys list`."""
    return key[:DISPLAY_PREFIX_LENGTH]


def parse_scopes(values: str | list[str]) -> frozenset[Scope]:
    """Scopes from a comma-separated string or a list; ValueError naming an unknown one."""
    items = values.split(",") if isinstance(values, str) else values
    scopes = set()
    for item in (part.strip().lower() for part in items):
        if not item:
            continue
        try:
            scopes.add(Scope(item))
        except ValueError:
            known = ", ".join(s.value for s in Scope)
            raise ValueError(f"unknown scope {item!r}: use {known}") from None
    if not scopes:
        raise ValueError("a key needs at least one scope")
    return frozenset(scopes)


def allows(granted: frozenset[Scope], needed: Scope) -> bool:
    return needed in granted or Scope.ADMIN in granted
