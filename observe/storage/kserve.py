"""KServe / Seldon payload-logger events waiting to be joined (table `kserve_pairs`).

`lock_pair` makes sure the row of a pair exists and holds it for the caller's transaction, so
that the request and response of one inference, arriving at the same moment at two server
processes, are joined by exactly one of them: on Postgres the second transaction waits on the
row lock (or on the first one's insert) and then sees the first one's half; on SQLite write
transactions are serialised anyway.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal, cast

from sqlalchemy import CursorResult, Table, delete, null, select, update
from sqlalchemy.orm import Session

from observe.db.models import KServePair
from observe.storage._sql import upsert

Half = Literal["request", "response"]


@dataclass(frozen=True)
class PairState:
    """What is stored of a pair: each half as JSON (None until it arrived), and whether the
    pair was joined already."""

    request: dict[str, Any] | None
    response: dict[str, Any] | None
    joined_at: dt.datetime | None


def lock_pair(
    session: Session, *, pair_key: str, event_id: str, received_at: dt.datetime
) -> PairState:
    """Create the pair's row if it is new, lock it until the transaction ends, and read it.

    Args:
        pair_key: SHA-256 hex of the events' source and id.
        event_id: the CloudEvents id, kept for reading the table.
        received_at: arrival time, the start of the pair's expiry clock when the row is new.
    """
    statement = (
        upsert(session, cast(Table, KServePair.__table__))
        .values(pair_key=pair_key, event_id=event_id, received_at=received_at)
        .on_conflict_do_nothing(index_elements=["pair_key"])
    )
    session.execute(statement)
    query = (
        select(KServePair.request, KServePair.response, KServePair.joined_at)
        .where(KServePair.pair_key == pair_key)
        .with_for_update()
    )
    request, response, joined_at = session.execute(query).one()
    return PairState(request, response, joined_at)


def save_half(session: Session, pair_key: str, half: Half, value: dict[str, Any]) -> None:
    """Store one half of a locked pair."""
    column = KServePair.request if half == "request" else KServePair.response
    session.execute(
        update(KServePair).where(KServePair.pair_key == pair_key).values({column: value})
    )


def mark_joined(session: Session, pair_key: str, *, joined_at: dt.datetime) -> None:
    """Clear a locked pair's payloads and remember that it was joined."""
    session.execute(
        update(KServePair)
        .where(KServePair.pair_key == pair_key)
        .values(request=null(), response=null(), joined_at=joined_at)
    )


def delete_unjoined_pairs(session: Session, *, before: dt.datetime, limit: int) -> dict[str, int]:
    """Delete up to `limit` pairs whose first half arrived before `before` and whose partner
    never did. Pairs another transaction holds (being joined right now) are skipped.

    Returns:
        How many deleted pairs had only a request, and how many only a response.
    """
    query = (
        select(KServePair.id, KServePair.request.is_not(None))
        .where(KServePair.joined_at.is_(None), KServePair.received_at < before)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    found = session.execute(query).all()
    if found:
        session.execute(delete(KServePair).where(KServePair.id.in_([id_ for id_, _ in found])))
    num_requests = sum(1 for _, has_request in found if has_request)
    return {"request": num_requests, "response": len(found) - num_requests}


def delete_joined_pairs(session: Session, *, before: dt.datetime, limit: int) -> int:
    """Delete up to `limit` pairs joined before `before`; returns how many."""
    ids = select(KServePair.id).where(KServePair.joined_at < before).limit(limit).scalar_subquery()
    result = session.execute(delete(KServePair).where(KServePair.id.in_(ids)))
    return cast(CursorResult[Any], result).rowcount or 0
