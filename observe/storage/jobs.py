"""Claims on periodic job slots: with many processes on one database, one runs each slot."""

from __future__ import annotations

import datetime as dt
from typing import cast

from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session

from observe.db.models import JobClaim
from observe.storage._sql import upsert


def slot_start(now: dt.datetime, interval_seconds: float) -> dt.datetime:
    """The start of the slot `now` falls in: slots are `interval_seconds` long, counted from
    the Unix epoch, so every process computes the same slots."""
    if interval_seconds <= 0:
        raise ValueError("interval_seconds must be positive")
    epoch = now.timestamp()
    return dt.datetime.fromtimestamp(epoch - epoch % interval_seconds, tz=dt.UTC)


def claim_job_slot(
    session: Session, job: str, slot: dt.datetime, *, now: dt.datetime, owner: str
) -> bool:
    """Claim a job's slot; True for the one caller that got it, False for all others.

    The claim is an INSERT ... ON CONFLICT DO NOTHING on the unique (job, slot_start): the
    database decides, so two processes, or two servers, never both win. Commit the session
    before running the job so that the others see the claim.
    """
    statement = (
        upsert(session, cast(Table, JobClaim.__table__))
        .values(job=job, slot_start=slot, claimed_at=now, claimed_by=owner[:200])
        .on_conflict_do_nothing(index_elements=["job", "slot_start"])
        .returning(JobClaim.id)
    )
    return session.execute(statement).first() is not None


def reclaim_stale_job_slot(
    session: Session,
    job: str,
    slot: dt.datetime,
    *,
    now: dt.datetime,
    owner: str,
    stale_before: dt.datetime,
) -> bool:
    """Take over a slot whose run was claimed before `stale_before` and never finished (its
    process died); True for the one caller that got it.

    One conditional UPDATE: of several callers, the database lets one change the row, and the
    others no longer find it stale.
    """
    result = session.execute(
        update(JobClaim)
        .where(
            JobClaim.job == job,
            JobClaim.slot_start == slot,
            JobClaim.finished_at.is_(None),
            JobClaim.claimed_at < stale_before,
        )
        .values(claimed_at=now, claimed_by=owner[:200])
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def finish_job_slot(session: Session, job: str, slot: dt.datetime, *, now: dt.datetime) -> None:
    """Record that a claimed slot's run completed."""
    session.execute(
        update(JobClaim)
        .where(JobClaim.job == job, JobClaim.slot_start == slot)
        .values(finished_at=now)
    )


def load_job_claims(session: Session, job: str, *, limit: int = 100) -> list[JobClaim]:
    """A job's claims, newest slot first."""
    query = (
        select(JobClaim)
        .where(JobClaim.job == job)
        .order_by(JobClaim.slot_start.desc())
        .limit(limit)
    )
    return list(session.scalars(query))
