"""Dialect helpers shared by the storage modules."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

T = TypeVar("T")

#: Rows per IN (...) list, well under SQLite's limit on bound parameters.
IN_CHUNK = 1000


def dialect_of(session: Session) -> str:
    return session.get_bind().dialect.name


def upsert(session: Session, table: Table) -> Any:
    """INSERT that supports ON CONFLICT, for the session's dialect."""
    if dialect_of(session) == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def chunks(items: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
