"""Shared fixtures: a database per dialect, settings isolated from the environment, API clients.

Every storage and API test takes the `db` fixture (directly or through `client`), which is
parametrized over SQLite and Postgres. Postgres comes from OBSERVE_TEST_DATABASE_URL; without
it the Postgres half is skipped, unless OBSERVE_REQUIRE_POSTGRES=1 (set by CI) makes that a
failure, so CI can never pass while silently skipping Postgres.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from observe.auth import Scope
from observe.config import Settings
from observe.db import migrate
from observe.db.engine import Database, create_database
from observe.db.models import Base

POSTGRES_URL_ENV = "OBSERVE_TEST_DATABASE_URL"
REQUIRE_POSTGRES_ENV = "OBSERVE_REQUIRE_POSTGRES"
KEEP_ENV = {POSTGRES_URL_ENV, REQUIRE_POSTGRES_ENV}
DIALECTS = ("sqlite", "postgresql")


def postgres_url() -> str | None:
    return os.environ.get(POSTGRES_URL_ENV) or None


def require_postgres() -> str:
    """The Postgres test URL, or skip (fail, when Postgres is required) without one."""
    url = postgres_url()
    if url is None:
        message = f"{POSTGRES_URL_ENV} is not set"
        if os.environ.get(REQUIRE_POSTGRES_ENV) == "1":
            pytest.fail(f"{message}, but {REQUIRE_POSTGRES_ENV}=1 requires Postgres")
        pytest.skip(f"{message}: Postgres half skipped")
    return url


def database_url(db: Database) -> str:
    return db.engine.url.render_as_string(hide_password=False)


@contextmanager
def other_engines(db: Database, count: int) -> Iterator[list[Database]]:
    """`count` more engines on the database of `db`, as other processes would have; disposed
    at the end."""
    others = [create_database(database_url(db)) for _ in range(count)]
    try:
        yield others
    finally:
        for other in others:
            other.engine.dispose()


def run_in_threads(
    target: Callable[..., object],
    args: Iterable[Sequence[Any]],
    *,
    timeout_seconds: float | None = None,
) -> None:
    """Call `target(*a)` for every `a` in `args`, each in a thread of its own, all started
    before any is waited for; returns when all have ended (or each wait timed out)."""
    threads = [threading.Thread(target=target, args=tuple(a)) for a in args]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout_seconds)


def make_settings(**overrides: Any) -> Settings:
    """Settings from the given values only: no .env file, no OBSERVE_* variables."""
    return Settings(_env_file=None, **overrides)  # type: ignore[call-arg]


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's OBSERVE_* settings."""
    for name in list(os.environ):
        if name.startswith("OBSERVE_") and name not in KEEP_ENV:
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once; each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "observe.db"
    db = create_database(f"sqlite:///{path}")
    migrate.upgrade(db.engine)
    db.engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[Database]:
    url = require_postgres()
    db = create_database(url, pool_size=4)
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:  # a set URL that does not answer is a failure, never a skip
        pytest.fail(f"{POSTGRES_URL_ENV} is set but Postgres does not answer: {error}")
    migrate.upgrade(db.engine)
    yield db
    db.engine.dispose()


@pytest.fixture(params=DIALECTS)
def dialect(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        require_postgres()
    return str(request.param)


@pytest.fixture
def db(dialect: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Database]:
    """An empty database at the newest schema, of the `dialect` under test."""
    if dialect == "sqlite":
        path = tmp_path / "observe.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        database = create_database(f"sqlite:///{path}")
        yield database
        database.engine.dispose()
        return
    database = request.getfixturevalue("postgres_database")
    truncate_all(database)
    yield database


def truncate_all(db: Database) -> None:
    tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
    with db.engine.begin() as connection:
        connection.execute(text(f"TRUNCATE TABLE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
def settings(db: Database, tmp_path: Path) -> Settings:
    return make_settings(database_url=database_url(db), data_dir=tmp_path)


@pytest.fixture
def api_keys(db: Database) -> dict[str, str]:
    """A plain key per scope: {"ingest": ..., "read": ..., "admin": ...}."""
    from observe.pipeline.keys import create_key

    return {
        scope.value: create_key(db.write_sessions, name=f"test {scope.value}", scopes=[scope])[0]
        for scope in Scope
    }


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def client(db: Database, settings: Settings) -> Iterator[Any]:
    """A TestClient of the full app (lifespan, batch writer) on `db`, auth enabled."""
    from fastapi.testclient import TestClient

    from observe.app import create_app

    with TestClient(create_app(settings, engine=db.engine)) as test_client:
        yield test_client


@pytest.fixture
def live_url(db: Database, settings: Settings) -> Iterator[str]:
    """The full app on a real uvicorn server on a free loopback port."""
    import uvicorn

    from observe.app import create_app

    config = uvicorn.Config(
        create_app(settings, engine=db.engine), host="127.0.0.1", port=0, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=20)
