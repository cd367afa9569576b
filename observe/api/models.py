"""GET /api/v1/models (traffic, errors, percentiles, SLOs), SLO updates and latency series."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session, sessionmaker

from observe.api.deps import get_session, get_settings, get_write_sessions
from observe.api.errors import ApiError, documented
from observe.api.params import WINDOW_DOC, parse_duration, resolve_window
from observe.api.security import requires
from observe.auth import Scope
from observe.config import Settings
from observe.pipeline import latency, overview
from observe.schemas.reads import ModelList, ModelOut, Slo, SloOut
from observe.storage import models as model_store

router = APIRouter(prefix="/api/v1/models", tags=["models"])


class LatencyPoints(BaseModel):
    key: str = Field(description="the version, tag value, or 'all'")
    points: list[dict[str, Any]] = Field(
        description="one per bucket with traffic: t, num_requests, num_errors, error_rate, "
        "mean_ms and p<percentile> (milliseconds)"
    )


class LatencySeriesOut(BaseModel):
    model: str
    start: dt.datetime
    end: dt.datetime
    bucket_seconds: int
    by: str
    source: str = Field(description="'rollups', or 'records' for a tag without rollups")
    percentiles: list[float]
    series: list[LatencyPoints]


@router.get(
    "",
    response_model=ModelList,
    dependencies=[requires(Scope.READ)],
    responses=documented(401, 403, 422),
    summary="List models with traffic, errors, percentiles and SLOs",
)
def list_models(
    start: str | None = Query(
        None, description=f"window start; default 24 h before end. {WINDOW_DOC}"
    ),
    end: str | None = Query(None, description=f"window end; default now. {WINDOW_DOC}"),
    session: Session = Depends(get_session),
) -> ModelList:
    """Every model with its versions' traffic, error rate and p50/p95/p99 in the window
    (whole minutes), its SLO, and the window measured against the SLO."""
    start_at, end_at = resolve_window(start, end)
    try:
        models = overview.list_model_overviews(session, start=start_at, end=end_at)
    except ValueError as error:  # a window that cannot be widened to whole minutes
        raise ApiError(422, str(error)) from None
    return ModelList(start=start_at, end=end_at, models=models)


@router.get(
    "/{model}",
    response_model=ModelOut,
    dependencies=[requires(Scope.READ)],
    responses=documented(401, 403, 404, 422),
    summary="One model with traffic, errors, percentiles and SLO",
)
def get_model(
    model: str,
    start: str | None = Query(
        None, description=f"window start; default 24 h before end. {WINDOW_DOC}"
    ),
    end: str | None = Query(None, description=f"window end; default now. {WINDOW_DOC}"),
    session: Session = Depends(get_session),
) -> ModelOut:
    start_at, end_at = resolve_window(start, end)
    try:
        found = overview.get_model_overview(session, model, start=start_at, end=end_at)
    except ValueError as error:  # a window that cannot be widened to whole minutes
        raise ApiError(422, str(error)) from None
    if found is None:
        raise ApiError(404, f"no model named {model!r}")
    return found


@router.put(
    "/{model}/slo",
    response_model=SloOut,
    dependencies=[requires(Scope.ADMIN)],
    responses=documented(401, 403, 422, 503),
    summary="Set a model's SLO",
)
def set_slo(
    model: str, slo: Slo, write_sessions: sessionmaker[Session] = Depends(get_write_sessions)
) -> SloOut:
    """Set (or, with nulls, clear) the latency and error-rate objectives of a model. A model
    not seen yet is registered, so SLOs can be set before traffic arrives."""
    if not model or len(model) > 200 or "\x00" in model:
        raise ApiError(422, "model name must have 1 to 200 characters and no NUL")
    now = dt.datetime.now(dt.UTC)
    with write_sessions.begin() as session:
        stored = model_store.set_slo(
            session,
            model,
            latency_percentile=slo.latency_percentile,
            latency_ms=slo.latency_ms,
            error_rate_pct=slo.error_rate_pct,
            now=now,
        )
    return overview.slo_out(stored)


@router.get(
    "/{model}/latency",
    response_model=LatencySeriesOut,
    dependencies=[requires(Scope.READ)],
    responses=documented(401, 403, 422),
    summary="Latency percentile series per time bucket",
)
def get_latency_series(
    model: str,
    start: str | None = Query(None, description=f"default 24 h before end. {WINDOW_DOC}"),
    end: str | None = Query(None, description=f"default now. {WINDOW_DOC}"),
    bucket: str = Query(
        "1m", description="bucket length: 1m, 5m, 1h, 1d or seconds (multiple of 60)"
    ),
    by: str = Query(
        "model_version", description="'model_version', 'all', or a tag key such as host"
    ),
    model_version: list[str] | None = Query(None, description="only these versions"),
    percentile: list[float] = Query([50, 95, 99], description="percentiles, 0-100 (repeatable)"),
    session: Session = Depends(get_session),
    settings: Settings = Depends(get_settings),
) -> LatencySeriesOut:
    """Percentiles (within 1% relative error), traffic, errors and mean latency per bucket,
    as one series per version, per tag value, or all versions together."""
    start_at, end_at = resolve_window(start, end)
    if any(not 0 <= p <= 100 for p in percentile):
        raise ApiError(422, "percentile: each must be between 0 and 100")
    try:
        result = latency.latency_series(
            session,
            model=model,
            start=start_at,
            end=end_at,
            bucket_seconds=parse_duration(bucket, "bucket"),
            by=by,
            model_versions=model_version,
            percentiles=percentile,
            rollup_tags=settings.rollup_tags,
        )
    except ValueError as error:
        raise ApiError(422, str(error)) from None
    return LatencySeriesOut(
        model=model,
        start=result.start,
        end=result.end,
        bucket_seconds=result.bucket_seconds,
        by=result.by,
        source=result.source,
        percentiles=list(percentile),
        series=points_of(result.frame),
    )


def points_of(frame: Any) -> list[LatencyPoints]:
    """One `LatencyPoints` per series of a percentile-series frame, NaN as null."""
    series = []
    for key, group in frame.groupby("series", sort=True):
        records = group.drop(columns=["series"]).rename(columns={"bucket_start": "t"})
        points = [
            {
                name: (None if isinstance(value, float) and value != value else value)
                for name, value in row.items()
            }
            for row in records.to_dict(orient="records")
        ]
        series.append(LatencyPoints(key=str(key), points=points))
    return series
