"""Alembic environment: runs revisions on the connection observe.db.migrate hands over.

Run from the command line (`alembic -c alembic.ini upgrade head`), it connects to the
database that OBSERVE_DATABASE_URL (or the default) names.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine, pool

from observe.config import Settings
from observe.db.models import Base

target_metadata = Base.metadata


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return
    engine = create_engine(Settings().database_url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        run_on(connection)


if context.is_offline_mode():
    raise SystemExit("observe migrations run online only: connect to a database")
run_online()
