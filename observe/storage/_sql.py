"""Dialect helpers shared by the storage modules."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import psycopg
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

T = TypeVar("T")

#: Rows per IN (...) list, well under SQLite's limit on bound parameters.
IN_CHUNK = 1000


def dialect_of(session: Session) -> str:
    return session.get_bind().dialect.name


def upsert(session: Session, table: Any) -> Any:
    """INSERT that supports ON CONFLICT, for the session's dialect."""
    if dialect_of(session) == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def chunks(items: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def copy_rows(
    session: Session, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """COPY rows (values in COPY's text format) into a table, in the session's transaction
    (Postgres only). Driver errors are wrapped as SQLAlchemy wraps them, so callers see one
    hierarchy (a lost connection is an OperationalError that the batch writer retries)."""
    connection = session.connection().connection.driver_connection
    assert isinstance(connection, psycopg.Connection)
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    try:
        with connection.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
    except psycopg.Error as error:
        raise DBAPIError.instance(statement, None, error, psycopg.Error) from error
