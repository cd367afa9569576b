"""Stored analysis findings: upserted by dedupe key, read by model, kind, status and window."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from observe.db.models import Finding
from observe.schemas.findings import FindingIn, FindingOut, FindingStatus
from observe.storage._sql import upsert

#: Columns an analysis re-run may change; `created_at` and the identity stay as first stored.
_UPDATABLE = ("window_start", "window_end", "status", "severity", "summary", "details")


def upsert_findings(
    session: Session, findings: Sequence[FindingIn], *, now: dt.datetime
) -> list[int]:
    """Store findings; one whose `dedupe_key` is stored already replaces that one's window,
    status, severity, summary and details (its id and `created_at` stay).

    Returns:
        The ids of the findings, in the order given (a key given twice: the last one wins).
    """
    if not findings:
        return []
    latest = {finding.dedupe_key: finding for finding in findings}
    rows = [
        {**finding.model_dump(), "created_at": now, "updated_at": now}
        for finding in latest.values()
    ]
    statement = upsert(session, Finding.__table__)
    excluded = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=["dedupe_key"],
        set_={**{name: excluded[name] for name in _UPDATABLE}, "updated_at": excluded.updated_at},
    ).returning(Finding.id, Finding.dedupe_key)
    ids = {key: id_ for id_, key in session.execute(statement, rows).all()}
    return [ids[finding.dedupe_key] for finding in findings]


def resolve_findings(
    session: Session,
    *,
    kind: str,
    model: str,
    keep_keys: Sequence[str],
    now: dt.datetime,
) -> int:
    """Mark the open findings of one analysis of one model as resolved, except those whose key
    is in `keep_keys` (the incidents the latest run still sees).

    Returns:
        How many findings were resolved.
    """
    statement = (
        update(Finding)
        .where(Finding.kind == kind, Finding.model == model, Finding.status == "open")
        .values(status="resolved", updated_at=now)
    )
    if keep_keys:
        statement = statement.where(Finding.dedupe_key.not_in(list(keep_keys)))
    result = session.execute(statement)
    return int(getattr(result, "rowcount", 0) or 0)


def load_findings(
    session: Session,
    *,
    model: str | None = None,
    kinds: Sequence[str] | None = None,
    statuses: Sequence[FindingStatus] | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    limit: int = 100,
) -> list[FindingOut]:
    """Findings whose window overlaps [start, end), most recently updated first."""
    query = select(Finding).order_by(Finding.updated_at.desc(), Finding.id.desc()).limit(limit)
    if model is not None:
        query = query.where(Finding.model == model)
    if kinds:
        query = query.where(Finding.kind.in_(list(kinds)))
    if statuses:
        query = query.where(Finding.status.in_(list(statuses)))
    if start is not None:
        query = query.where(Finding.window_end > start)
    if end is not None:
        query = query.where(Finding.window_start < end)
    return [_finding_out(row) for row in session.scalars(query)]


def get_finding(session: Session, finding_id: int) -> FindingOut | None:
    row = session.get(Finding, finding_id)
    return None if row is None else _finding_out(row)


def _finding_out(row: Finding) -> FindingOut:
    return FindingOut.model_validate(row, from_attributes=True)
