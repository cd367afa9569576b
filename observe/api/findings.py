"""GET /api/v1/findings: stored analysis findings (drift, skew, latency regressions, ...)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from sqlalchemy.orm import Session

from observe.api.deps import get_session
from observe.api.errors import ApiError, documented
from observe.api.params import parse_open_window
from observe.api.security import requires
from observe.auth import Scope
from observe.schemas.findings import FindingOut, FindingStatus
from observe.storage import findings as finding_store

router = APIRouter(prefix="/api/v1", tags=["findings"], dependencies=[requires(Scope.READ)])


class FindingList(BaseModel):
    items: list[FindingOut]


@router.get(
    "/findings",
    response_model=FindingList,
    responses=documented(401, 403, 422),
    summary="List analysis findings, most recently updated first",
)
def list_findings(
    model: str | None = Query(None, description="model name"),
    kind: list[str] | None = Query(None, description="drift, skew, latency_regression, ..."),
    status: list[FindingStatus] | None = Query(None, description="open, resolved or ok"),
    start: str | None = Query(None, description="findings whose window ends after this"),
    end: str | None = Query(None, description="findings whose window starts before this"),
    limit: int = Query(100, ge=1, le=1000),
    session: Session = Depends(get_session),
) -> FindingList:
    """Findings whose analysis window overlaps [start, end); every filter is optional."""
    start_at, end_at = parse_open_window(start, end)
    items = finding_store.load_findings(
        session,
        model=model,
        kinds=kind,
        statuses=status,
        start=start_at,
        end=end_at,
        limit=limit,
    )
    return FindingList(items=items)


@router.get(
    "/findings/{finding_id}",
    response_model=FindingOut,
    responses=documented(401, 403, 404),
    summary="One finding with its full details",
)
def get_finding(finding_id: int, session: Session = Depends(get_session)) -> FindingOut:
    found = finding_store.get_finding(session, finding_id) if finding_id < 2**63 else None
    if found is None:
        raise ApiError(404, f"no finding with id {finding_id}")
    return found
