"""Rows that ingest merges into under a row lock: lock the stored ones, insert the new ones.

Used for aggregates that many batches add to (trace summaries, span rollups). Each row is
addressed by its key columns; `lock_rows` reads the stored ones FOR UPDATE in key order (so
concurrent writers cannot deadlock on them), `insert_rows` inserts the missing ones skipping
keys another writer inserted meanwhile (the caller then locks and merges those), and
`save_rows` writes back merged values by id.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Table, select, tuple_, update
from sqlalchemy.orm import Session

from observe.db.base import Base
from observe.storage._sql import chunks, dialect_of, upsert

Key = tuple[Any, ...]
LOCK_CHUNK = 500


def lock_rows(
    session: Session,
    entity: type[Base],
    key_columns: Sequence[str],
    value_columns: Sequence[str],
    keys: Iterable[Key],
) -> dict[Key, dict[str, Any]]:
    """Stored rows for `keys` as {key: {"id": ..., value columns...}}, locked until the
    transaction ends; missing keys are absent."""
    table = _table(entity)
    keyed = [table.c[name] for name in key_columns]
    values = [table.c[name] for name in value_columns]
    rows: dict[Key, dict[str, Any]] = {}
    for chunk in chunks(sorted(set(keys)), LOCK_CHUNK):
        query = select(table.c.id, *keyed, *values).where(_key_in(keyed, chunk)).order_by(*keyed)
        if dialect_of(session) == "postgresql":
            query = query.with_for_update()
        for found in session.execute(query):
            key = tuple(_as_utc(part) for part in found[1 : 1 + len(keyed)])
            values_found = found[1 + len(keyed) :]
            rows[key] = {"id": found[0], **dict(zip(value_columns, values_found, strict=True))}
    return rows


def insert_rows(
    session: Session, entity: type[Base], key_columns: Sequence[str], rows: Sequence[dict[str, Any]]
) -> set[Key]:
    """Insert rows (dicts of every column but id) in key order; returns the keys inserted."""
    if not rows:
        return set()
    table = _table(entity)
    ordered = sorted(rows, key=lambda row: tuple(row[name] for name in key_columns))
    statement = upsert(session, table).on_conflict_do_nothing()
    statement = statement.returning(*(table.c[name] for name in key_columns))
    return {tuple(_as_utc(part) for part in found) for found in session.execute(statement, ordered)}


def save_rows(session: Session, entity: type[Base], rows: Iterable[dict[str, Any]]) -> None:
    """Write back rows (each with its "id") obtained from `lock_rows` and merged: an ORM bulk
    UPDATE by primary key."""
    values = list(rows)
    if values:
        session.execute(update(entity), values)


def _table(entity: type[Base]) -> Table:
    table = entity.__table__
    assert isinstance(table, Table)
    return table


def _key_in(columns: list[Any], keys: Sequence[Key]) -> Any:
    if len(columns) == 1:
        return columns[0].in_([key[0] for key in keys])
    return tuple_(*columns).in_(list(keys))


def _as_utc(value: Any) -> Any:
    if not isinstance(value, dt.datetime):
        return value
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
