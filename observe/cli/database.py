"""`observe db upgrade|current`."""

from __future__ import annotations

import typer

from observe.cli.base import (
    JsonOption,
    db_app,
    fail,
    first_line,
    load_settings,
    out,
    print_json,
    safe_url,
)
from observe.db import migrate
from observe.db.engine import create_database

# --- db ----------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Upgrade the database schema (creating the database if needed)."""
    settings = load_settings()
    db = create_database(settings.database_url)
    try:
        before = migrate.current_revision(db.engine)
        migrate.upgrade(db.engine, revision)
        after = migrate.current_revision(db.engine)
    except Exception as error:
        raise fail(
            f"upgrade of {safe_url(settings.database_url)} failed: {first_line(error)}"
        ) from None
    out.print(f"{safe_url(settings.database_url)}: {before or 'empty'} -> {after}")


@db_app.command("current")
def db_current(as_json: bool = JsonOption) -> None:
    """Show the schema revision of the database and the newest one available."""
    settings = load_settings()
    db = create_database(settings.database_url)
    try:
        current = migrate.current_revision(db.engine)
    except Exception as error:
        raise fail(f"cannot read {safe_url(settings.database_url)}: {first_line(error)}") from None
    info = {
        "database": safe_url(settings.database_url),
        "current": current,
        "head": migrate.head_revision(),
    }
    if as_json:
        print_json(info)
    else:
        out.print(f"{info['database']}: at {current or 'empty'}, newest {info['head']}")
