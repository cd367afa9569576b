"""observe.storage.jobs: slots are the same for every process and each is claimed once."""

from __future__ import annotations

import datetime as dt

import pytest

from observe.db.engine import Database
from observe.storage import jobs as job_store
from tests.factories import T0


def test_slots_are_counted_from_the_epoch() -> None:
    inside = T0 + dt.timedelta(minutes=59, seconds=59)

    assert job_store.slot_start(inside, 3600) == T0
    assert job_store.slot_start(T0, 3600) == T0
    assert job_store.slot_start(T0 + dt.timedelta(minutes=61), 1800) == T0 + dt.timedelta(
        minutes=60
    )
    with pytest.raises(ValueError, match="positive"):
        job_store.slot_start(T0, 0)


def test_a_slot_is_claimed_once_and_the_next_one_again(db: Database) -> None:
    def claim(slot: dt.datetime, owner: str) -> bool:
        with db.write_sessions.begin() as session:
            return job_store.claim_job_slot(session, "analysis", slot, now=T0, owner=owner)

    assert claim(T0, "a") is True
    assert claim(T0, "b") is False
    assert claim(T0 + dt.timedelta(hours=1), "b") is True
    with db.write_sessions.begin() as session:
        assert job_store.claim_job_slot(session, "report", T0, now=T0, owner="c") is True
        job_store.finish_job_slot(session, "analysis", T0, now=T0 + dt.timedelta(minutes=2))

    with db.sessions() as session:
        claims = job_store.load_job_claims(session, "analysis")
    assert [(c.slot_start, c.claimed_by) for c in claims] == [
        (T0 + dt.timedelta(hours=1), "b"),
        (T0, "a"),
    ]
    assert claims[1].finished_at == T0 + dt.timedelta(minutes=2)
    assert claims[0].finished_at is None


def test_an_unfinished_claim_is_taken_over_once_it_is_stale(db: Database) -> None:
    hour = dt.timedelta(hours=1)

    def reclaim(now: dt.datetime, owner: str) -> bool:
        with db.write_sessions.begin() as session:
            return job_store.reclaim_stale_job_slot(
                session, "report", T0, now=now, owner=owner, stale_before=now - hour
            )

    with db.write_sessions.begin() as session:
        job_store.claim_job_slot(session, "report", T0, now=T0, owner="died")

    assert reclaim(T0 + hour / 2, "early") is False  # not stale yet
    assert reclaim(T0 + 2 * hour, "b") is True
    assert reclaim(T0 + 2 * hour, "c") is False  # b's claim is fresh
    with db.write_sessions.begin() as session:
        job_store.finish_job_slot(session, "report", T0, now=T0 + 3 * hour)
    assert reclaim(T0 + 9 * hour, "d") is False  # finished slots stay finished
    with db.sessions() as session:
        [claim] = job_store.load_job_claims(session, "report")
    assert claim.claimed_by == "b"
