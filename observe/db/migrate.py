"""Schema migrations, run programmatically on an engine (Alembic owns the schema)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

import migrations

# Any constant works: it only has to be the same for every observe process on one Postgres.
_POSTGRES_LOCK_ID = 0x0B5E_0001


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at observe's revisions, optionally bound to `connection`."""
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision id in migrations/versions."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError("no migrations found")
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Upgrade the schema to `revision`; concurrent callers on one Postgres take turns."""
    _run(engine, "upgrade", revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Downgrade the schema to `revision` ("base" removes every table)."""
    _run(engine, "downgrade", revision)


def is_up_to_date(engine: Engine) -> bool:
    return current_revision(engine) == head_revision()


def _run(engine: Engine, direction: str, revision: str) -> None:
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _POSTGRES_LOCK_ID})
        getattr(command, direction)(alembic_config(connection), revision)
