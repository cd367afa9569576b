"""Stored weekly reports: one row per (week, model) and a summary per week, inserted once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, delete, select, update
from sqlalchemy.orm import Session

from observe.db.models import Report
from observe.storage._sql import upsert

SUMMARY_MODEL = ""


@dataclass(frozen=True)
class StoredReport:
    """A report row; `content` is None when it was not loaded."""

    id: int
    week: str
    week_start: dt.datetime
    kind: str
    model: str | None
    created_at: dt.datetime
    created_by: str
    num_needs_attention: int
    content: dict[str, Any] | None


def insert_report(
    session: Session,
    *,
    week: str,
    week_start: dt.datetime,
    model: str | None,
    content: dict[str, Any],
    now: dt.datetime,
    owner: str,
) -> int | None:
    """Store a week's report of `model` (None: the summary) unless one is stored already.

    The insert is ON CONFLICT DO NOTHING on the unique (week, kind, model), so two servers
    writing the same week never both store it.

    Returns:
        The new report's id, or None when the week's report was stored before.
    """
    statement = (
        upsert(session, cast(Table, Report.__table__))
        .values(
            week=week,
            week_start=week_start,
            kind=_kind(model),
            model=model or SUMMARY_MODEL,
            content=content,
            num_needs_attention=_num_needs_attention(content),
            created_at=now,
            created_by=owner[:200],
        )
        .on_conflict_do_nothing(index_elements=["week", "kind", "model"])
        .returning(Report.id)
    )
    row = session.execute(statement).first()
    return None if row is None else int(row[0])


def replace_report_content(
    session: Session, report_id: int, content: dict[str, Any], *, now: dt.datetime, owner: str
) -> None:
    """Replace a stored report's content (a report rendered again on request)."""
    session.execute(
        update(Report)
        .where(Report.id == report_id)
        .values(
            content=content,
            num_needs_attention=_num_needs_attention(content),
            created_at=now,
            created_by=owner[:200],
        )
    )


def get_report(session: Session, report_id: int) -> StoredReport | None:
    """One report with its content."""
    row = session.get(Report, report_id)
    return None if row is None else _stored(row, with_content=True)


def find_report(session: Session, *, week: str, model: str | None) -> StoredReport | None:
    """The week's report of `model` (None: the summary), with its content."""
    row = session.scalars(
        select(Report).where(
            Report.week == week,
            Report.kind == _kind(model),
            Report.model == (model or SUMMARY_MODEL),
        )
    ).first()
    return None if row is None else _stored(row, with_content=True)


def load_week_reports(session: Session, week: str) -> list[StoredReport]:
    """Every report of a week with its content: the summary first, then models by name."""
    query = select(Report).where(Report.week == week).order_by(Report.kind.desc(), Report.model)
    return [_stored(row, with_content=True) for row in session.scalars(query)]


def list_reports(
    session: Session,
    *,
    week: str | None = None,
    model: str | None = None,
    kind: str | None = None,
    limit: int = 100,
) -> list[StoredReport]:
    """Reports without their content, newest week first (the summary before the models)."""
    query = (
        select(
            Report.id,
            Report.week,
            Report.week_start,
            Report.kind,
            Report.model,
            Report.created_at,
            Report.created_by,
            Report.num_needs_attention,
        )
        .order_by(Report.week_start.desc(), Report.kind.desc(), Report.model)
        .limit(limit)
    )
    if week is not None:
        query = query.where(Report.week == week)
    if model is not None:
        query = query.where(Report.model == model, Report.kind == "model")
    if kind is not None:
        query = query.where(Report.kind == kind)
    return [_stored(row, with_content=False) for row in session.execute(query)]


def stored_weeks(session: Session, weeks: Sequence[str]) -> set[str]:
    """Those of `weeks` whose summary is stored (the summary is written last)."""
    if not weeks:
        return set()
    query = select(Report.week).where(Report.week.in_(list(weeks)), Report.kind == "summary")
    return set(session.scalars(query))


def delete_model_reports(session: Session, models: Sequence[str]) -> None:
    """Delete the model reports of these models (summaries stay)."""
    session.execute(delete(Report).where(Report.kind == "model", Report.model.in_(list(models))))


def _kind(model: str | None) -> str:
    return "summary" if model is None else "model"


def _stored(row: Any, *, with_content: bool) -> StoredReport:
    """A `Report`, or a row of its columns (`content` needed only `with_content`)."""
    return StoredReport(
        row.id,
        row.week,
        row.week_start,
        row.kind,
        row.model or None,
        row.created_at,
        row.created_by,
        row.num_needs_attention,
        row.content if with_content else None,
    )


def _num_needs_attention(content: dict[str, Any]) -> int:
    return len(content.get("needs_attention") or [])
