"""Alembic owns the schema: head matches the models, and every revision walks down and up.

Runs on a database of its own per dialect (a fresh SQLite file, a fresh Postgres database), so
a failure half-way cannot leave the shared test database at an odd revision.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from observe.db import migrate
from observe.db.engine import Database, create_database
from observe.db.models import Base
from tests.conftest import require_postgres


@pytest.fixture
def empty_db(dialect: str, tmp_path: Path) -> Iterator[Database]:
    if dialect == "sqlite":
        db = create_database(f"sqlite:///{tmp_path / 'migrations.db'}")
        yield db
        db.engine.dispose()
        return
    url = make_url(require_postgres())
    name = f"observe_migrations_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    db = create_database(url.set(database=name).render_as_string(hide_password=False))
    try:
        yield db
    finally:
        db.engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def _schema_diff(db: Database) -> list[object]:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def _tables(db: Database) -> set[str]:
    return set(inspect(db.engine).get_table_names()) - {"alembic_version"}


def test_upgrade_to_head_matches_the_models(empty_db: Database) -> None:
    assert migrate.current_revision(empty_db.engine) is None
    migrate.upgrade(empty_db.engine)
    assert migrate.is_up_to_date(empty_db.engine)
    assert _tables(empty_db) == set(Base.metadata.tables)
    assert _schema_diff(empty_db) == []


def test_every_revision_walks_down_and_up(empty_db: Database) -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config())
    revisions = [r.revision for r in reversed(list(script.walk_revisions()))]
    migrate.upgrade(empty_db.engine)
    for previous, revision in reversed(list(zip([None, *revisions[:-1]], revisions, strict=True))):
        migrate.downgrade(empty_db.engine, previous or "base")
        assert migrate.current_revision(empty_db.engine) == previous
        migrate.upgrade(empty_db.engine, revision)
        assert migrate.current_revision(empty_db.engine) == revision
        migrate.downgrade(empty_db.engine, previous or "base")
    assert _tables(empty_db) == set()
    migrate.upgrade(empty_db.engine)
    assert _schema_diff(empty_db) == []


def test_history_is_linear() -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config())
    assert len(script.get_heads()) == 1
    assert len(script.get_bases()) == 1
