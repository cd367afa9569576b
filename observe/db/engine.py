"""Engines and session factories for SQLite and Postgres."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from observe.config import normalise_database_url


@dataclass(frozen=True)
class Database:
    """An engine with its two session factories.

    `sessions` is for reads; `write_sessions` takes SQLite's write lock at BEGIN (BEGIN
    IMMEDIATE), so a read-then-write transaction never fails half-way on a stale snapshot when
    another process writes to the same file. On Postgres both are the same.
    """

    engine: Engine
    sessions: sessionmaker[Session]
    write_sessions: sessionmaker[Session]

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name


def create_database(
    url: str, *, sqlite_busy_timeout_ms: int = 30_000, pool_size: int = 8, echo: bool = False
) -> Database:
    """Create the engine and session factories for `url` (nothing connects yet)."""
    url = normalise_database_url(url)
    engine = _create_engine(url, sqlite_busy_timeout_ms, pool_size, echo)
    sessions = sessionmaker(engine, expire_on_commit=False)
    if engine.dialect.name == "sqlite":
        writer = engine.execution_options(sqlite_begin="BEGIN IMMEDIATE")
        write_sessions = sessionmaker(writer, expire_on_commit=False)
    else:
        write_sessions = sessions
    return Database(engine=engine, sessions=sessions, write_sessions=write_sessions)


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _json_loads(value: Any) -> Any:
    # A JSON column has NUMERIC affinity in SQLite, which stores a bare JSON number ("0.12")
    # as a number: it comes back as int or float, not text.
    if isinstance(value, int | float):
        return value
    return orjson.loads(value)


def _create_engine(url: str, busy_timeout_ms: int, pool_size: int, echo: bool) -> Engine:
    if url.startswith("sqlite"):
        return _create_sqlite_engine(url, busy_timeout_ms, echo)
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        echo=echo,
        json_serializer=_json_dumps,
        json_deserializer=_json_loads,
    )


def _create_sqlite_engine(url: str, busy_timeout_ms: int, echo: bool) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        echo=echo,
        connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000},
        json_serializer=_json_dumps,
        json_deserializer=_json_loads,
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (pysqlite recipe);
        # synchronous=FULL so an acknowledged batch survives a power cut, not only a crash.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql(connection.get_execution_options().get("sqlite_begin", "BEGIN"))

    return engine
