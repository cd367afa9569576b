"""GET /api/v1/reports and /api/v1/alerts: the weekly reports (JSON and self-contained HTML),
the alerts about incidents, and how their deliveries went."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from dashboards.report import render_report_html
from observe.api.deps import get_session
from observe.api.errors import ApiError, documented
from observe.api.security import requires
from observe.auth import Scope
from observe.pipeline.weeks import Week
from observe.schemas.diagnosis import Period
from observe.schemas.reports import (
    AlertOut,
    AlertState,
    DeliveryOut,
    ModelReport,
    ReportOut,
    SummaryReport,
)
from observe.storage import alerts as alert_store
from observe.storage import deliveries as delivery_store
from observe.storage import reports as report_store
from observe.storage.deliveries import DeliveryRow
from observe.storage.reports import StoredReport

router = APIRouter(prefix="/api/v1", tags=["reports"], dependencies=[requires(Scope.READ)])

MAX_ID = 2**63


class ReportList(BaseModel):
    items: list[ReportOut]


class AlertList(BaseModel):
    items: list[AlertOut]


@router.get(
    "/reports",
    response_model=ReportList,
    responses=documented(401, 403, 422),
    summary="List weekly reports, newest week first",
)
def list_reports(
    week: str | None = Query(None, description="an ISO week such as 2026-W47"),
    model: str | None = Query(None, description="only this model's reports"),
    kind: Literal["model", "summary"] | None = Query(None),
    limit: int = Query(100, ge=1, le=1000),
    session: Session = Depends(get_session),
) -> ReportList:
    """Each report's week, model (null for the summary across models), window and creation,
    with the delivery status of its week per channel."""
    if week is not None:
        try:
            week = Week.parse(week).name
        except ValueError as error:
            raise ApiError(422, f"week: {error}") from None
    stored = report_store.list_reports(session, week=week, model=model, kind=kind, limit=limit)
    deliveries = delivery_store.load_deliveries(session, weeks=sorted({r.week for r in stored}))
    return ReportList(items=[_report_out(r, deliveries) for r in stored])


@router.get(
    "/reports/{report_id}",
    response_model=ModelReport | SummaryReport,
    responses=documented(401, 403, 404),
    summary="One report's JSON: every number the HTML shows",
)
def get_report(
    report_id: int, session: Session = Depends(get_session)
) -> ModelReport | SummaryReport:
    """A model's week (`kind` model) or the summary across models (`kind` summary)."""
    stored = _found(session, report_id)
    content = stored.content or {}
    if content.get("kind") == "summary":
        return SummaryReport.model_validate(content)
    return ModelReport.model_validate(content)


@router.get(
    "/reports/{report_id}/html",
    response_class=HTMLResponse,
    responses={**documented(401, 403, 404), 200: {"content": {"text/html": {}}}},
    summary="One report as a self-contained HTML file (opens offline)",
)
async def get_report_html(report_id: int, session: Session = Depends(get_session)) -> HTMLResponse:
    stored = _found(session, report_id)
    document = await run_in_threadpool(render_report_html, stored.content or {})
    name = f"observe-{stored.week}-{stored.model or 'summary'}.html".replace('"', "")
    return HTMLResponse(document, headers={"Content-Disposition": f'inline; filename="{name}"'})


@router.get(
    "/alerts",
    response_model=AlertList,
    responses=documented(401, 403, 422),
    summary="List alerts about incidents, newest first",
)
def list_alerts(
    model: str | None = Query(None, description="only alerts about this model"),
    state: list[AlertState] | None = Query(None, description="opened or resolved"),
    limit: int = Query(100, ge=1, le=1000),
    session: Session = Depends(get_session),
) -> AlertList:
    """Each alert (an incident opened or resolved) with its deliveries per channel."""
    alerts = alert_store.load_alerts(session, model=model, states=state, limit=limit)
    deliveries = delivery_store.load_deliveries(session, alert_ids=[a.id for a in alerts])
    by_alert: dict[int, list[DeliveryOut]] = {}
    for delivery in deliveries:
        by_alert.setdefault(int(delivery.alert_id or 0), []).append(delivery_out(delivery))
    return AlertList(
        items=[
            AlertOut(
                id=a.id,
                incident_key=a.incident_key,
                state=a.state,  # type: ignore[arg-type]
                kind=a.kind,
                model=a.model,
                model_version=a.model_version,
                finding_id=a.finding_id,
                summary=a.summary,
                details=a.details,
                created_at=a.created_at,
                deliveries=by_alert.get(a.id, []),
            )
            for a in alerts
        ]
    )


def _found(session: Session, report_id: int) -> StoredReport:
    stored = report_store.get_report(session, report_id) if report_id < MAX_ID else None
    if stored is None:
        raise ApiError(404, f"no report with id {report_id}")
    return stored


def delivery_out(row: DeliveryRow) -> DeliveryOut:
    return DeliveryOut(
        channel=row.channel,
        status=row.status,  # type: ignore[arg-type]
        attempts=row.attempts,
        last_error=row.last_error,
        next_attempt_at=row.next_attempt_at,
        sent_at=row.sent_at,
        updated_at=row.updated_at,
    )


def _report_out(report: StoredReport, deliveries: Sequence[DeliveryRow]) -> ReportOut:
    week = Week.parse(report.week)
    return ReportOut(
        id=report.id,
        week=report.week,
        kind=report.kind,  # type: ignore[arg-type]
        model=report.model,
        window=Period(start=week.start, end=week.end),
        created_at=report.created_at,
        created_by=report.created_by,
        num_needs_attention=report.num_needs_attention,
        deliveries=[delivery_out(d) for d in deliveries if d.week == report.week],
    )
