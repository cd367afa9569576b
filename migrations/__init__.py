"""Alembic revisions of observe's schema, for SQLite and Postgres (see observe.db.migrate)."""
