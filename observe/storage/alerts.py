"""The alert log: one row per incident and state (opened, resolved), inserted once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, delete, select
from sqlalchemy.orm import Session, aliased

from observe.db.models import Alert
from observe.storage._sql import upsert


@dataclass(frozen=True)
class AlertRow:
    id: int
    incident_key: str
    subject: str
    state: str
    kind: str
    model: str
    model_version: str | None
    finding_id: int | None
    summary: str
    details: dict[str, Any]
    created_at: dt.datetime


@dataclass(frozen=True)
class NewAlert:
    """An alert about to be logged."""

    incident_key: str
    subject: str
    state: str
    kind: str
    model: str
    model_version: str | None
    finding_id: int | None
    summary: str
    details: dict[str, Any]


def insert_alert(session: Session, alert: NewAlert, *, now: dt.datetime) -> int | None:
    """Log an alert unless the same incident's same state was logged before.

    The insert is ON CONFLICT DO NOTHING on the unique (incident_key, state): whoever inserts
    the row sends the alert, and nobody else does.

    Returns:
        The new alert's id, or None when it was logged before.
    """
    statement = (
        upsert(session, cast(Table, Alert.__table__))
        .values(
            incident_key=alert.incident_key[:128],
            subject=alert.subject,
            state=alert.state,
            kind=alert.kind,
            model=alert.model,
            model_version=alert.model_version,
            finding_id=alert.finding_id,
            summary=alert.summary,
            details=alert.details,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["incident_key", "state"])
        .returning(Alert.id)
    )
    row = session.execute(statement).first()
    return None if row is None else int(row[0])


def load_open_incidents(session: Session) -> list[AlertRow]:
    """The `opened` alerts of incidents with no `resolved` alert yet, oldest first."""
    resolved = aliased(Alert)
    query = (
        select(Alert)
        .where(Alert.state == "opened")
        .where(
            ~select(resolved.id)
            .where(resolved.incident_key == Alert.incident_key, resolved.state == "resolved")
            .exists()
        )
        .order_by(Alert.created_at, Alert.id)
    )
    return [_row(row) for row in session.scalars(query)]


def load_alerts(
    session: Session,
    *,
    model: str | None = None,
    states: Sequence[str] | None = None,
    ids: Sequence[int] | None = None,
    limit: int = 100,
) -> list[AlertRow]:
    """Alerts, newest first."""
    query = select(Alert).order_by(Alert.created_at.desc(), Alert.id.desc()).limit(limit)
    if model is not None:
        query = query.where(Alert.model == model)
    if states:
        query = query.where(Alert.state.in_(list(states)))
    if ids is not None:
        query = query.where(Alert.id.in_(list(ids)))
    return [_row(row) for row in session.scalars(query)]


def get_alert(session: Session, alert_id: int) -> AlertRow | None:
    row = session.get(Alert, alert_id)
    return None if row is None else _row(row)


def delete_model_alerts(session: Session, models: Sequence[str]) -> None:
    """Delete the alerts about these models (delete their deliveries first)."""
    session.execute(delete(Alert).where(Alert.model.in_(list(models))))


def _row(row: Alert) -> AlertRow:
    return AlertRow(
        row.id,
        row.incident_key,
        row.subject,
        row.state,
        row.kind,
        row.model,
        row.model_version,
        row.finding_id,
        row.summary,
        row.details,
        row.created_at,
    )
