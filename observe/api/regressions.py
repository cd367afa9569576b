"""GET /api/v1/models/{model}/regressions: latency regressions computed live for a window."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from observe.api.deps import get_session, get_settings
from observe.api.errors import ApiError, documented
from observe.api.params import WINDOW_DOC, parse_duration, resolve_window
from observe.api.security import requires
from observe.auth import Scope
from observe.config import Settings
from observe.pipeline import latency_analysis

router = APIRouter(prefix="/api/v1/models", tags=["models"], dependencies=[requires(Scope.READ)])


class RegressionOut(BaseModel):
    series: str = Field(description="'all' (every version together) or the version analysed")
    model_version: str | None = Field(
        description="the version that carries the regression, when one does"
    )
    percentile: float
    onset_at: dt.datetime = Field(description="start of the first bucket at the new level")
    before_start: dt.datetime = Field(description="start of the segment before the onset")
    cleared_at: dt.datetime | None = Field(description="when the level came back, if it did")
    is_open: bool
    before_ms: float = Field(description="the percentile's median level before the onset")
    after_ms: float = Field(description="the percentile's median level after the onset")
    ratio: float
    significance: dict[str, Any] = Field(
        description="source (records or rollups), the windows compared, the Mann-Whitney test "
        "with Cliff's delta and the ratio of medians, and the test of the percentile itself"
    )
    event: dict[str, Any] | None = Field(
        description="the nearest deploy, rollback, canary, config or scale event before it"
    )
    carriers: list[dict[str, Any]] = Field(
        description="slices (version, host, tag value) ranked by the share of the change each "
        "explains, with their before/after percentiles and traffic shares"
    )


class RegressionList(BaseModel):
    model: str
    start: dt.datetime
    end: dt.datetime
    bucket_seconds: int
    percentiles: list[float]
    items: list[RegressionOut]


@router.get(
    "/{model}/regressions",
    response_model=RegressionList,
    responses=documented(401, 403, 422),
    summary="Latency regressions of a model in a window, detected now",
)
def list_regressions(
    model: str,
    start: str | None = Query(None, description=f"default 24 h before end. {WINDOW_DOC}"),
    end: str | None = Query(None, description=f"default now. {WINDOW_DOC}"),
    bucket: str = Query("5m", description="bucket of the percentile series: 1m, 5m, 1h, ..."),
    model_version: list[str] | None = Query(None, description="only these versions"),
    percentile: list[float] = Query([50, 95, 99], description="percentiles, 0-100 (repeatable)"),
    session: Session = Depends(get_session),
    settings: Settings = Depends(get_settings),
) -> RegressionList:
    """Change points in the per-bucket percentile series of the model and of each version,
    kept where the new level is at least 1.1 times the old one and the requests after the
    onset are significantly slower; each with its before/after test, the nearest change
    event and the slices that carry it. Stored findings of the hourly run are at
    GET /api/v1/findings."""
    start_at, end_at = resolve_window(start, end)
    if any(not 0 < p < 100 for p in percentile):
        raise ApiError(422, "percentile: each must be between 0 and 100, exclusive")
    try:
        bucket_seconds = parse_duration(bucket, "bucket")
        regressions = latency_analysis.detect_regressions(
            session,
            model=model,
            start=start_at,
            end=end_at,
            bucket_seconds=bucket_seconds,
            percentiles=percentile,
            model_versions=model_version,
            rollup_tags=settings.rollup_tags,
        )
    except ValueError as error:
        raise ApiError(422, str(error)) from None
    return RegressionList(
        model=model,
        start=start_at,
        end=end_at,
        bucket_seconds=bucket_seconds,
        percentiles=list(percentile),
        items=[RegressionOut(**r.as_dict()) for r in regressions],
    )
