"""Deliveries of a week's reports or of an alert, one row per channel, with their attempts.

A delivery is `pending` until a channel accepts it (`sent`) or it has used up its attempts
(`failed`). Senders claim due deliveries by moving their `next_attempt_at` forward by a lease
in one conditional UPDATE, so two servers never send the same delivery at the same time, and
a sender that dies mid-way leaves the delivery to be tried again once the lease runs out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, delete, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from observe.db.models import Alert, Delivery
from observe.storage._sql import upsert

#: Errors are stored up to this many characters.
MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class DeliveryRow:
    """A delivery: of the reports of `week`, or of the alert `alert_id`."""

    id: int
    week: str | None
    alert_id: int | None
    channel: str
    status: str
    attempts: int
    last_error: str | None
    next_attempt_at: dt.datetime | None
    sent_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


def enqueue_deliveries(
    session: Session,
    *,
    channels: Sequence[str],
    now: dt.datetime,
    week: str | None = None,
    alert_id: int | None = None,
    requeue: bool = False,
) -> None:
    """Make a week's reports (or an alert) due for delivery through each of `channels`.

    A delivery that exists already is left as it is, unless `requeue` makes it pending again
    with fresh attempts (a report sent again on request).
    """
    if (week is None) == (alert_id is None):
        raise ValueError("give a week or an alert_id")
    if not channels:
        return
    rows = [
        {
            "week": week,
            "alert_id": alert_id,
            "channel": channel,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "updated_at": now,
        }
        for channel in channels
    ]
    keys = ["week", "channel"] if week is not None else ["alert_id", "channel"]
    statement = upsert(session, cast(Table, Delivery.__table__)).on_conflict_do_nothing(
        index_elements=keys
    )
    session.execute(statement, rows)
    if requeue:
        session.execute(
            update(Delivery)
            .where(_subject(week, alert_id), Delivery.channel.in_(list(channels)))
            .values(
                status="pending",
                attempts=0,
                last_error=None,
                next_attempt_at=now,
                sent_at=None,
                updated_at=now,
            )
        )


def claim_due_deliveries(
    session: Session, *, now: dt.datetime, lease_seconds: float, limit: int = 100
) -> list[DeliveryRow]:
    """Claim the pending deliveries that are due, counting the attempt about to be made.

    Each claim is an UPDATE of one row on the condition that it is still pending and due, so
    of two servers claiming at once only one gets each delivery. Commit before sending.

    Returns:
        The claimed deliveries (with `attempts` counting this attempt), oldest first.
    """
    due = select(Delivery.id).where(Delivery.status == "pending", Delivery.next_attempt_at <= now)
    candidates = list(session.scalars(due.order_by(Delivery.next_attempt_at).limit(limit)))
    lease_end = now + dt.timedelta(seconds=lease_seconds)
    claimed = []
    for delivery_id in candidates:
        result = session.execute(
            update(Delivery)
            .where(
                Delivery.id == delivery_id,
                Delivery.status == "pending",
                Delivery.next_attempt_at <= now,
            )
            .values(
                next_attempt_at=lease_end,
                attempts=Delivery.attempts + 1,
                updated_at=now,
            )
        )
        if result.rowcount:  # type: ignore[attr-defined]
            claimed.append(delivery_id)
    return [_row(row) for row in _load(session, claimed)]


def record_delivery_sent(session: Session, delivery_id: int, *, now: dt.datetime) -> None:
    """A channel accepted the delivery."""
    session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id)
        .values(status="sent", sent_at=now, last_error=None, next_attempt_at=None, updated_at=now)
    )


def record_delivery_failure(
    session: Session,
    delivery_id: int,
    *,
    error: str,
    now: dt.datetime,
    retry_at: dt.datetime | None,
) -> None:
    """An attempt failed: try again at `retry_at`, or (None) give up, marking it failed."""
    session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id)
        .values(
            status="pending" if retry_at is not None else "failed",
            last_error=error[:MAX_ERROR_CHARS],
            next_attempt_at=retry_at,
            updated_at=now,
        )
    )


def load_deliveries(
    session: Session,
    *,
    weeks: Sequence[str] | None = None,
    alert_ids: Sequence[int] | None = None,
    statuses: Sequence[str] | None = None,
    limit: int = 1000,
) -> list[DeliveryRow]:
    """Deliveries of these weeks and alerts (each filter optional), by channel."""
    query = select(Delivery).order_by(Delivery.week, Delivery.alert_id, Delivery.channel)
    if weeks is not None:
        query = query.where(Delivery.week.in_(list(weeks)))
    if alert_ids is not None:
        query = query.where(Delivery.alert_id.in_(list(alert_ids)))
    if statuses is not None:
        query = query.where(Delivery.status.in_(list(statuses)))
    return [_row(row) for row in session.scalars(query.limit(limit))]


def delete_alert_deliveries(session: Session, models: Sequence[str]) -> None:
    """Delete the deliveries of the alerts about these models."""
    alerts = select(Alert.id).where(Alert.model.in_(list(models)))
    session.execute(delete(Delivery).where(Delivery.alert_id.in_(alerts)))


def _subject(week: str | None, alert_id: int | None) -> ColumnElement[bool]:
    return Delivery.week == week if week is not None else Delivery.alert_id == alert_id


def _load(session: Session, ids: list[int]) -> list[Delivery]:
    if not ids:
        return []
    query = select(Delivery).where(Delivery.id.in_(ids)).order_by(Delivery.id)
    return list(session.scalars(query))


def _row(row: Delivery) -> DeliveryRow:
    return DeliveryRow(
        row.id,
        row.week,
        row.alert_id,
        row.channel,
        row.status,
        row.attempts,
        row.last_error,
        row.next_attempt_at,
        row.sent_at,
        row.created_at,
        row.updated_at,
    )
