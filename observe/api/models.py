"""GET /api/v1/models (traffic, errors, percentiles, SLOs), SLO updates and latency series."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field, model_validator
from sqlalchemy.orm import Session, sessionmaker

from observe.api.deps import get_session, get_settings, get_write_sessions
from observe.api.errors import ApiError, documented
from observe.api.params import parse_duration, resolve_window
from observe.api.security import requires
from observe.auth import Scope
from observe.config import Settings
from observe.pipeline import latency
from observe.storage import models as model_store

router = APIRouter(prefix="/api/v1/models", tags=["models"])

_WINDOW_DOC = "RFC 3339, epoch seconds, or a duration before now such as -24h"


class Slo(BaseModel):
    """Service-level objectives: `latency_percentile` of latency under `latency_ms`, and the
    error rate under `error_rate_pct`. Either part may be left out (null)."""

    latency_percentile: float | None = Field(default=None, gt=0, lt=100, examples=[95])
    latency_ms: float | None = Field(default=None, gt=0, examples=[250])
    error_rate_pct: float | None = Field(default=None, ge=0, le=100, examples=[1.0])

    @model_validator(mode="after")
    def _latency_parts_together(self) -> Slo:
        if (self.latency_percentile is None) != (self.latency_ms is None):
            raise ValueError("latency_percentile and latency_ms are set together")
        return self


class SloOut(Slo):
    updated_at: dt.datetime | None = None


class SloStatus(BaseModel):
    """The window measured against the SLO; `*_ok` is null where no objective or no traffic."""

    latency_ms: float | None
    latency_ok: bool | None
    error_rate_pct: float | None
    error_rate_ok: bool | None


class VersionStats(BaseModel):
    model_version: str
    first_seen_at: dt.datetime | None = None
    last_seen_at: dt.datetime | None = None
    num_requests: int
    num_errors: int
    error_rate: float | None
    mean_ms: float | None
    p50: float | None
    p95: float | None
    p99: float | None


class ModelOut(BaseModel):
    name: str
    created_at: dt.datetime
    start: dt.datetime
    end: dt.datetime
    num_requests: int
    num_errors: int
    error_rate: float | None
    mean_ms: float | None
    p50: float | None
    p95: float | None
    p99: float | None
    slo: SloOut
    slo_status: SloStatus
    versions: list[VersionStats]


class ModelList(BaseModel):
    start: dt.datetime
    end: dt.datetime
    models: list[ModelOut]


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
        None, description=f"window start; default 24 h before end. {_WINDOW_DOC}"
    ),
    end: str | None = Query(None, description=f"window end; default now. {_WINDOW_DOC}"),
    session: Session = Depends(get_session),
) -> ModelList:
    """Every model with its versions' traffic, error rate and p50/p95/p99 in the window
    (whole minutes), its SLO, and the window measured against the SLO."""
    start_at, end_at = resolve_window(start, end)
    models = [
        _model_out(session, info, start_at, end_at) for info in model_store.list_models(session)
    ]
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
        None, description=f"window start; default 24 h before end. {_WINDOW_DOC}"
    ),
    end: str | None = Query(None, description=f"window end; default now. {_WINDOW_DOC}"),
    session: Session = Depends(get_session),
) -> ModelOut:
    start_at, end_at = resolve_window(start, end)
    info = model_store.get_model(session, model)
    if info is None:
        raise ApiError(404, f"no model named {model!r}")
    return _model_out(session, info, start_at, end_at)


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
    return SloOut(
        latency_percentile=stored.latency_percentile,
        latency_ms=stored.latency_ms,
        error_rate_pct=stored.error_rate_pct,
        updated_at=stored.updated_at,
    )


@router.get(
    "/{model}/latency",
    response_model=LatencySeriesOut,
    dependencies=[requires(Scope.READ)],
    responses=documented(401, 403, 422),
    summary="Latency percentile series per time bucket",
)
def get_latency_series(
    model: str,
    start: str | None = Query(None, description=f"default 24 h before end. {_WINDOW_DOC}"),
    end: str | None = Query(None, description=f"default now. {_WINDOW_DOC}"),
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
        series=_points(result.frame),
    )


def _points(frame: Any) -> list[LatencyPoints]:
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


def _model_out(
    session: Session, info: model_store.ModelInfo, start: dt.datetime, end: dt.datetime
) -> ModelOut:
    percentiles = list(latency.DEFAULT_PERCENTILES)
    if info.slo.latency_percentile is not None and info.slo.latency_percentile not in percentiles:
        percentiles.append(info.slo.latency_percentile)
    total, versions = latency.latency_summary(
        session, model=info.name, start=start, end=end, percentiles=percentiles
    )
    window_start, window_end = latency.align_window(start, end, 60)
    seen = {v.model_version: v for v in info.versions}
    version_stats = [_version_stats(v, seen.get(v.model_version)) for v in versions]
    reported = {v.model_version for v in versions}
    version_stats += [
        _version_stats(latency.VersionSummary(v.model_version, 0, 0, None, None, {}), v)
        for v in info.versions
        if v.model_version not in reported
    ]
    return ModelOut(
        name=info.name,
        created_at=info.created_at,
        start=window_start,
        end=window_end,
        num_requests=total.num_requests,
        num_errors=total.num_errors,
        error_rate=total.error_rate,
        mean_ms=total.mean_ms,
        p50=total.percentiles.get("p50"),
        p95=total.percentiles.get("p95"),
        p99=total.percentiles.get("p99"),
        slo=SloOut(
            latency_percentile=info.slo.latency_percentile,
            latency_ms=info.slo.latency_ms,
            error_rate_pct=info.slo.error_rate_pct,
            updated_at=info.slo.updated_at,
        ),
        slo_status=_slo_status(info.slo, total),
        versions=version_stats,
    )


def _version_stats(
    summary: latency.VersionSummary, seen: model_store.VersionSeen | None
) -> VersionStats:
    return VersionStats(
        model_version=summary.model_version,
        first_seen_at=seen.first_seen_at if seen else None,
        last_seen_at=seen.last_seen_at if seen else None,
        num_requests=summary.num_requests,
        num_errors=summary.num_errors,
        error_rate=summary.error_rate,
        mean_ms=summary.mean_ms,
        p50=summary.percentiles.get("p50"),
        p95=summary.percentiles.get("p95"),
        p99=summary.percentiles.get("p99"),
    )


def _slo_status(slo: model_store.Slo, total: latency.VersionSummary) -> SloStatus:
    observed_latency = None
    if slo.latency_percentile is not None:
        observed_latency = total.percentiles.get(latency.percentile_column(slo.latency_percentile))
    error_rate_pct = None if total.error_rate is None else total.error_rate * 100
    return SloStatus(
        latency_ms=observed_latency,
        latency_ok=None
        if observed_latency is None or slo.latency_ms is None
        else observed_latency <= slo.latency_ms,
        error_rate_pct=error_rate_pct,
        error_rate_ok=None
        if error_rate_pct is None or slo.error_rate_pct is None
        else error_rate_pct <= slo.error_rate_pct,
    )
