"""`observe keys create|list|revoke`."""

from __future__ import annotations

import datetime as dt
from typing import Any

import typer
from rich.table import Table

from observe.auth import parse_scopes
from observe.cli.base import (
    JsonOption,
    fail,
    keys_app,
    load_settings,
    open_database,
    out,
    print_json,
)

# --- keys --------------------------------------------------------------------------------------


@keys_app.command("create")
def keys_create(
    scope: list[str] = typer.Option(..., "--scope", help="ingest, read or admin (repeatable)."),
    name: str = typer.Option("", help="What the key is for."),
    as_json: bool = JsonOption,
) -> None:
    """Create an API key and print it once (only its hash is stored)."""
    from observe.pipeline.keys import create_key

    try:
        scopes = parse_scopes(scope)
    except ValueError as error:
        raise fail(str(error), 2) from None
    db = open_database(load_settings())
    plain, row = create_key(db.write_sessions, name=name or ",".join(sorted(scopes)), scopes=scopes)
    if as_json:
        print_json({"id": row.id, "name": row.name, "scopes": sorted(scopes), "key": plain})
        return
    out.print(f"Created key {row.id} ({row.name}) with scopes {', '.join(sorted(scopes))}.")
    out.print("Store it now; it cannot be shown again:\n")
    out.print(f"    {plain}\n")


@keys_app.command("list")
def keys_list(as_json: bool = JsonOption) -> None:
    """List API keys (prefixes only)."""
    from observe.storage.keys import list_api_keys

    db = open_database(load_settings())
    with db.sessions() as session:
        rows: list[dict[str, Any]] = [
            {
                "id": key.id,
                "name": key.name,
                "prefix": key.prefix,
                "scopes": key.scopes.split(","),
                "created_at": key.created_at,
                "last_used_at": key.last_used_at,
                "revoked_at": key.revoked_at,
            }
            for key in list_api_keys(session)
        ]
    if as_json:
        print_json(rows)
        return
    table = Table("id", "name", "prefix", "scopes", "created", "last used", "revoked")
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["name"],
            row["prefix"] + "…",
            ",".join(row["scopes"]),
            _when(row["created_at"]),
            _when(row["last_used_at"]),
            _when(row["revoked_at"]),
        )
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key: str = typer.Argument(..., help="Key id or prefix, as `observe keys list` shows."),
) -> None:
    """Revoke a key; servers stop accepting it within 30 seconds."""
    from observe.storage.keys import revoke_api_key

    db = open_database(load_settings())
    with db.write_sessions.begin() as session:
        revoked = revoke_api_key(session, key.removesuffix("…"), now=dt.datetime.now(dt.UTC))
        names = [f"{row.id} ({row.name})" for row in revoked]
    if not names:
        raise fail(f"no active key with id or prefix {key!r}")
    out.print(f"Revoked {', '.join(names)}.")


def _when(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"
