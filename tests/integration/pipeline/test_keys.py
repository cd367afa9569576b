"""observe.pipeline.keys: creating keys (hashed at rest) and the first-start admin key."""

from __future__ import annotations

import hashlib
import threading

from sqlalchemy import select, text

from observe.auth import Scope
from observe.db.engine import Database
from observe.db.models import ApiKey
from observe.pipeline.keys import BOOTSTRAP_KEY_NAME, create_key, ensure_admin_key
from tests.conftest import run_in_threads

CONFIGURED = "configured-bootstrap-key-0123456789"


def stored_cells(db: Database) -> list[str]:
    """Every value of every column of every api_keys row, as text."""
    with db.engine.connect() as connection:
        rows = connection.execute(text("SELECT * FROM api_keys")).all()
    return [str(value) for row in rows for value in row]


def keys(db: Database) -> list[ApiKey]:
    with db.sessions() as session:
        return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def test_create_key_stores_only_the_digest_of_the_plain_key(db: Database) -> None:
    plain, row = create_key(db.write_sessions, name="ingest job", scopes=[Scope.INGEST, Scope.READ])

    assert plain.startswith("obs_")
    assert len(plain) > 40
    assert row.key_hash == hashlib.sha256(plain.encode()).hexdigest()
    assert (row.name, row.prefix, row.scopes) == ("ingest job", plain[:12], "ingest,read")
    cells = stored_cells(db)
    assert row.key_hash in cells
    assert not any(plain in cell for cell in cells)


def test_create_key_with_a_given_key_and_random_keys_differ(db: Database) -> None:
    given, _ = create_key(db.write_sessions, name="given", scopes=[Scope.READ], key=CONFIGURED)
    first, _ = create_key(db.write_sessions, name="one", scopes=[Scope.READ])
    second, _ = create_key(db.write_sessions, name="two", scopes=[Scope.READ])

    assert given == CONFIGURED
    assert first != second
    cells = stored_cells(db)
    assert [key.key_hash for key in keys(db)] == [
        hashlib.sha256(k.encode()).hexdigest() for k in (CONFIGURED, first, second)
    ]
    assert not any(k in cell for cell in cells for k in (CONFIGURED, first, second))


def test_first_start_creates_an_admin_key_and_returns_it_once(db: Database) -> None:
    plain = ensure_admin_key(db.write_sessions, configured=None)

    assert plain is not None
    stored = keys(db)
    assert len(stored) == 1
    assert (stored[0].name, stored[0].scopes) == (BOOTSTRAP_KEY_NAME, "admin")
    assert stored[0].key_hash == hashlib.sha256(plain.encode()).hexdigest()
    assert not any(plain in cell for cell in stored_cells(db))

    assert ensure_admin_key(db.write_sessions, configured=None) is None
    assert len(keys(db)) == 1


def test_no_admin_key_is_made_when_keys_already_exist(db: Database) -> None:
    create_key(db.write_sessions, name="reader", scopes=[Scope.READ])

    assert ensure_admin_key(db.write_sessions, configured=None) is None

    assert [key.name for key in keys(db)] == ["reader"]


def test_a_configured_bootstrap_key_is_installed_once(db: Database) -> None:
    create_key(db.write_sessions, name="reader", scopes=[Scope.READ])

    assert ensure_admin_key(db.write_sessions, configured=CONFIGURED) is None
    assert ensure_admin_key(db.write_sessions, configured=CONFIGURED) is None

    stored = keys(db)
    assert [(key.name, key.scopes) for key in stored] == [
        ("reader", "read"),
        (BOOTSTRAP_KEY_NAME, "admin"),
    ]
    assert stored[1].key_hash == hashlib.sha256(CONFIGURED.encode()).hexdigest()
    assert not any(CONFIGURED in cell for cell in stored_cells(db))


def test_processes_starting_together_install_the_configured_key_once(db: Database) -> None:
    """Replicas sharing one database start at once: none fails, the key is stored once."""
    barrier = threading.Barrier(4)
    results: list[str | None] = []
    errors: list[Exception] = []

    def start() -> None:
        barrier.wait(timeout=30)
        try:
            results.append(ensure_admin_key(db.write_sessions, configured=CONFIGURED))
        except Exception as error:
            errors.append(error)

    run_in_threads(start, [()] * 4, timeout_seconds=30)

    assert errors == []
    assert results == [None] * 4
    assert [key.key_hash for key in keys(db)] == [hashlib.sha256(CONFIGURED.encode()).hexdigest()]
