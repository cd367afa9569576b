"""observe.storage.keys: API key digests, lookup, listing, revocation and last use."""

from __future__ import annotations

import datetime as dt
import hashlib

from observe.db.engine import Database
from observe.db.models import ApiKey
from observe.storage import keys as key_store
from tests.factories import T0


def digest(plain: str) -> str:
    return hashlib.sha256(plain.encode()).hexdigest()


def add(db: Database, plain: str, *, name: str = "ci", scopes: list[str] | None = None) -> int:
    with db.write_sessions.begin() as session:
        key = key_store.insert_api_key(
            session,
            name=name,
            prefix=plain[:12],
            key_hash=digest(plain),
            scopes=scopes or ["read", "ingest"],
            now=T0,
        )
        return key.id


def revoke(db: Database, id_or_prefix: str, now: dt.datetime = T0) -> list[int]:
    with db.write_sessions.begin() as session:
        return [key.id for key in key_store.revoke_api_key(session, id_or_prefix, now=now)]


def find(db: Database, plain: str) -> ApiKey | None:
    with db.sessions() as session:
        return key_store.find_api_key(session, digest(plain))


def test_a_key_is_found_by_its_digest_with_sorted_scopes(db: Database) -> None:
    key_id = add(db, "obs_first-key-plain-text", scopes=["read", "ingest"])

    found = find(db, "obs_first-key-plain-text")

    assert found is not None
    assert (found.id, found.name, found.prefix) == (key_id, "ci", "obs_first-ke")
    assert found.key_hash == digest("obs_first-key-plain-text")
    assert found.scopes == "ingest,read"
    assert (found.created_at, found.last_used_at, found.revoked_at) == (T0, None, None)
    assert find(db, "obs_first-key-plain-tex") is None


def test_list_and_count_keys_in_creation_order(db: Database) -> None:
    with db.sessions() as session:
        assert key_store.count_api_keys(session) == 0
        assert key_store.list_api_keys(session) == []
    for name in ("c", "a", "b"):
        add(db, f"obs_key-of-{name}", name=name)

    with db.sessions() as session:
        assert key_store.count_api_keys(session) == 3
        assert [key.name for key in key_store.list_api_keys(session)] == ["c", "a", "b"]


def test_revoke_by_id_touches_only_that_key_and_only_once(db: Database) -> None:
    first = add(db, "obs_aaaaaaaaaaaaaaaa")
    second = add(db, "obs_bbbbbbbbbbbbbbbb")
    revoked_at = T0 + dt.timedelta(hours=1)

    assert revoke(db, str(second), revoked_at) == [second]
    assert revoke(db, str(second), revoked_at + dt.timedelta(hours=1)) == []

    revoked = find(db, "obs_bbbbbbbbbbbbbbbb")
    assert revoked is not None
    assert revoked.revoked_at == revoked_at  # a second revoke does not move the time
    untouched = find(db, "obs_aaaaaaaaaaaaaaaa")
    assert untouched is not None
    assert (untouched.id, untouched.revoked_at) == (first, None)


def test_revoke_by_display_prefix(db: Database) -> None:
    add(db, "obs_prefixAAAA-rest-one")
    other = add(db, "obs_prefixBBBB-rest-two")

    assert revoke(db, "obs_prefixBB") == [other]
    assert revoke(db, "obs_prefix") == []  # a prefix must match the stored one exactly


def test_revoking_an_unknown_key_revokes_nothing(db: Database) -> None:
    add(db, "obs_cccccccccccccccc")

    for unknown in ("999", "obs_nothing", ""):
        assert revoke(db, unknown) == [], unknown

    key = find(db, "obs_cccccccccccccccc")
    assert key is not None
    assert key.revoked_at is None


def test_touch_records_the_last_use(db: Database) -> None:
    key_id = add(db, "obs_dddddddddddddddd")
    used_at = T0 + dt.timedelta(minutes=7)

    with db.write_sessions.begin() as session:
        key_store.touch_api_key(session, key_id, now=used_at)

    key = find(db, "obs_dddddddddddddddd")
    assert key is not None
    assert key.last_used_at == used_at
