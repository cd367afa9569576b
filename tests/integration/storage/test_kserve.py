"""observe.storage.kserve: the pairs of payload-logger events, locked, joined and expired."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from observe.db.engine import Database
from observe.db.models import KServePair
from observe.storage import kserve as kserve_store
from tests.factories import T0

HALF = {"kind": "request", "event_id": "e1"}


def lock(db: Database, key: str, *, at: dt.datetime = T0) -> kserve_store.PairState:
    with db.write_sessions.begin() as session:
        return kserve_store.lock_pair(session, pair_key=key, event_id=key, received_at=at)


def count_pairs(db: Database) -> int:
    with db.sessions() as session:
        return session.scalar(select(func.count()).select_from(KServePair)) or 0


def test_a_pair_row_is_created_once_and_keeps_its_first_arrival(db: Database) -> None:
    assert lock(db, "k1") == kserve_store.PairState(None, None, None)
    assert lock(db, "k1", at=T0 + dt.timedelta(minutes=5)) == kserve_store.PairState(
        None, None, None
    )

    with db.sessions() as session:
        [row] = session.scalars(select(KServePair)).all()
    assert (row.pair_key, row.received_at) == ("k1", T0)


def test_halves_are_stored_and_cleared_on_join(db: Database) -> None:
    with db.write_sessions.begin() as session:
        kserve_store.lock_pair(session, pair_key="k1", event_id="e1", received_at=T0)
        kserve_store.save_half(session, "k1", "request", HALF)
    assert lock(db, "k1") == kserve_store.PairState(HALF, None, None)

    with db.write_sessions.begin() as session:
        kserve_store.mark_joined(session, "k1", joined_at=T0 + dt.timedelta(seconds=1))

    assert lock(db, "k1") == kserve_store.PairState(None, None, T0 + dt.timedelta(seconds=1))


def test_unjoined_pairs_expire_by_arrival_and_are_counted_by_half(db: Database) -> None:
    with db.write_sessions.begin() as session:
        for key, half, minutes in [("old-req", "request", 0), ("old-resp", "response", 1)]:
            at = T0 + dt.timedelta(minutes=minutes)
            kserve_store.lock_pair(session, pair_key=key, event_id=key, received_at=at)
            kserve_store.save_half(session, key, half, HALF)
        kserve_store.lock_pair(
            session, pair_key="new", event_id="new", received_at=T0 + dt.timedelta(minutes=10)
        )
        kserve_store.save_half(session, "new", "request", HALF)
        kserve_store.lock_pair(session, pair_key="joined", event_id="joined", received_at=T0)
        kserve_store.mark_joined(session, "joined", joined_at=T0)

    with db.write_sessions.begin() as session:
        counts = kserve_store.delete_unjoined_pairs(
            session, before=T0 + dt.timedelta(minutes=5), limit=100
        )

    assert counts == {"request": 1, "response": 1}
    assert count_pairs(db) == 2  # the new one, and the joined one


def test_deletes_are_bounded_by_the_limit(db: Database) -> None:
    with db.write_sessions.begin() as session:
        for n in range(5):
            key = f"k{n}"
            kserve_store.lock_pair(session, pair_key=key, event_id=key, received_at=T0)
            kserve_store.mark_joined(session, key, joined_at=T0)

    with db.write_sessions.begin() as session:
        assert kserve_store.delete_joined_pairs(session, before=T0 + dt.timedelta(1), limit=3) == 3
    with db.write_sessions.begin() as session:
        assert kserve_store.delete_joined_pairs(session, before=T0, limit=3) == 0
    assert count_pairs(db) == 2
