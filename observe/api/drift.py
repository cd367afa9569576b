"""Reference data sets, drift, drift over time, and training-serving skew.

POST /api/v1/references (ingest), GET /api/v1/references, GET /api/v1/models/{model}/drift,
GET /api/v1/models/{model}/drift/timeline, GET /api/v1/models/{model}/skew (read).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from observe.api.bodies import read_body
from observe.api.deps import get_session, get_settings
from observe.api.errors import ApiError, documented
from observe.api.params import (
    WINDOW_DOC,
    parse_duration,
    parse_feature_options,
    parse_thresholds,
    parse_time,
    resolve_window,
)
from observe.api.security import requires
from observe.auth import Scope
from observe.config import Settings
from observe.db.engine import Database
from observe.pipeline import drift as drift_pipeline
from observe.pipeline import references as reference_pipeline
from observe.pipeline import skew as skew_pipeline
from observe.storage import references as reference_store

router = APIRouter(prefix="/api/v1", tags=["drift"])

_PARQUET_TYPES = {"application/vnd.apache.parquet", "application/x-parquet", "application/parquet"}
_CSV_TYPES = {"text/csv", "application/csv"}


class ReferenceOut(BaseModel):
    id: int
    model: str
    model_version: str
    name: str
    created_at: dt.datetime | None = None
    source: str | None = None
    num_rows: int
    num_rows_stored: int
    feature_types: dict[str, str]


class ReferenceList(BaseModel):
    items: list[ReferenceOut]


class AnalysisOut(BaseModel):
    """A drift or skew result; see the README for its fields."""

    model_config = {"extra": "allow"}


class TimelineOut(BaseModel):
    model: str
    model_version: str | None
    bucket_seconds: int
    baseline: dict[str, Any]
    buckets: list[dict[str, Any]] = Field(
        description="start, num_rows, dataset_drifted, share_drifted, and per feature: "
        "test, score, drifted"
    )


@router.post(
    "/references",
    response_model=ReferenceOut,
    dependencies=[requires(Scope.INGEST)],
    responses=documented(400, 401, 403, 413, 415, 422, 503),
    summary="Upload a training reference data set (Parquet or CSV)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/vnd.apache.parquet": {
                    "schema": {"type": "string", "format": "binary"}
                },
                "text/csv": {"schema": {"type": "string"}},
            },
        }
    },
)
async def create_reference(
    request: Request,
    model: str = Query(..., description="model name"),
    model_version: str = Query(..., description="the model version trained on this data"),
    name: str = Query("training", description="name; re-uploading a name replaces it"),
    settings: Settings = Depends(get_settings),
) -> ReferenceOut:
    """Store the training features of a model version: a profile of every row and up to
    OBSERVE_REFERENCE_MAX_ROWS rows. One column per feature; a `request_id` column (or any
    entity key) lets skew compare feature values per entity."""
    body = await read_body(request, int(settings.reference_max_mb * 1024 * 1024))
    fmt = _reference_format(request.headers.get("content-type"), body)
    db: Database = request.app.state.db

    def store() -> reference_pipeline.ReferenceSummary:
        frame = reference_pipeline.read_reference_bytes(body, fmt)
        return reference_pipeline.store_reference(
            db,
            frame,
            model=model,
            model_version=model_version,
            name=name,
            source="upload",
            max_rows=settings.reference_max_rows,
            now=dt.datetime.now(dt.UTC),
        )

    try:
        summary = await run_in_threadpool(store)
    except reference_pipeline.ReferenceError as error:
        raise ApiError(422, str(error)) from None
    return ReferenceOut(**summary.as_dict())


def _reference_format(content_type: str | None, body: bytes) -> str:
    media_type = (content_type or "").split(";")[0].strip().lower()
    if not body:
        raise ApiError(400, "empty body: send a Parquet or CSV file")
    if media_type in _PARQUET_TYPES or (
        media_type in ("", "application/octet-stream") and body[:4] == b"PAR1"
    ):
        return "parquet"
    if media_type in _CSV_TYPES or media_type in ("", "application/octet-stream"):
        return "csv"
    raise ApiError(
        415,
        f"unsupported Content-Type {media_type!r}: use application/vnd.apache.parquet or text/csv",
    )


@router.get(
    "/references",
    response_model=ReferenceList,
    dependencies=[requires(Scope.READ)],
    responses=documented(401, 403, 422),
    summary="List reference data sets",
)
def list_references(
    model: str | None = Query(None),
    model_version: str | None = Query(None),
    session: Session = Depends(get_session),
) -> ReferenceList:
    items = reference_store.list_reference_datasets(
        session, model=model, model_version=model_version
    )
    return ReferenceList(items=[ReferenceOut(**item.__dict__) for item in items])


def _drift_query(
    model: str,
    start: str | None,
    end: str | None,
    model_version: str | None,
    baseline_start: str | None,
    baseline_end: str | None,
    reference: str | None,
    test: list[str] | None,
    threshold: list[str] | None,
    drift_share: float | None,
) -> drift_pipeline.DriftQuery:
    start_at, end_at = resolve_window(start, end)
    return drift_pipeline.DriftQuery(
        model=model,
        start=start_at,
        end=end_at,
        model_version=model_version,
        baseline_start=parse_time(baseline_start, "baseline_start"),
        baseline_end=parse_time(baseline_end, "baseline_end"),
        reference=reference,
        tests=parse_feature_options(test, "test"),
        thresholds=parse_thresholds(threshold),
        drift_share=drift_share,
    )


_TEST_DOC = (
    "feature:test, e.g. amount:psi (ks, chisquare, z, wasserstein, jensenshannon, psi, hellinger)"
)


@router.get(
    "/models/{model}/drift",
    response_model=AnalysisOut,
    dependencies=[requires(Scope.READ)],
    responses=documented(401, 403, 404, 422),
    summary="Per-feature drift of a window against a baseline window or a reference",
)
def get_drift(
    request: Request,
    model: str,
    start: str | None = Query(None, description=f"default 24 h before end. {WINDOW_DOC}"),
    end: str | None = Query(None, description=f"default now. {WINDOW_DOC}"),
    model_version: str | None = Query(None),
    baseline_start: str | None = Query(None, description="baseline window start"),
    baseline_end: str | None = Query(None, description="baseline window end"),
    reference: str | None = Query(None, description="reference data set name"),
    test: list[str] | None = Query(None, description=_TEST_DOC),
    threshold: list[str] | None = Query(None, description="feature:threshold, e.g. amount:0.2"),
    drift_share: float | None = Query(None, gt=0, le=1),
    settings: Settings = Depends(get_settings),
) -> dict[str, Any]:
    """Each feature's test, statistic, p-value, threshold, verdict and plot data (both sides'
    histograms or category shares), the share of drifted features and the data set verdict.
    Without a baseline: the version's newest reference, else the preceding window."""
    query = _drift_query(
        model,
        start,
        end,
        model_version,
        baseline_start,
        baseline_end,
        reference,
        test,
        threshold,
        drift_share,
    )
    try:
        report = drift_pipeline.analyze_drift(
            request.app.state.db, query, settings=settings, now=dt.datetime.now(dt.UTC)
        )
    except drift_pipeline.DriftInputError as error:
        raise ApiError(422, str(error)) from None
    return report.to_dict()


@router.get(
    "/models/{model}/drift/timeline",
    response_model=TimelineOut,
    dependencies=[requires(Scope.READ)],
    responses=documented(401, 403, 422),
    summary="Drift of each time bucket against the baseline, for a heatmap",
)
def get_drift_timeline(
    request: Request,
    model: str,
    start: str | None = Query(None, description=f"default 7 days before end. {WINDOW_DOC}"),
    end: str | None = Query(None, description=f"default now. {WINDOW_DOC}"),
    bucket: str = Query("1d", description="bucket length, whole hours: 1h, 6h, 1d"),
    model_version: str | None = Query(None),
    baseline_start: str | None = Query(None),
    baseline_end: str | None = Query(None),
    reference: str | None = Query(None),
    test: list[str] | None = Query(None, description=_TEST_DOC),
    threshold: list[str] | None = Query(None),
    settings: Settings = Depends(get_settings),
) -> TimelineOut:
    """From hourly profiles. Without a baseline: the version's newest reference, else the
    window of equal length before `start`."""
    if start is None:
        end_at = parse_time(end, "end") or dt.datetime.now(dt.UTC)
        start = (end_at - dt.timedelta(days=7)).isoformat()
        end = end_at.isoformat()
    query = _drift_query(
        model,
        start,
        end,
        model_version,
        baseline_start,
        baseline_end,
        reference,
        test,
        threshold,
        None,
    )
    try:
        baseline, buckets = drift_pipeline.drift_timeline(
            request.app.state.db,
            query,
            bucket_seconds=parse_duration(bucket, "bucket"),
            settings=settings,
            now=dt.datetime.now(dt.UTC),
        )
    except drift_pipeline.DriftInputError as error:
        raise ApiError(422, str(error)) from None
    return TimelineOut(
        model=model,
        model_version=model_version,
        bucket_seconds=parse_duration(bucket, "bucket"),
        baseline=baseline.to_dict(),
        buckets=[b.to_dict() for b in buckets],
    )


@router.get(
    "/models/{model}/skew",
    response_model=AnalysisOut,
    dependencies=[requires(Scope.READ)],
    responses=documented(401, 403, 422),
    summary="Training-serving skew against a reference data set",
)
def get_skew(
    request: Request,
    model: str,
    start: str | None = Query(None, description=f"default 24 h before end. {WINDOW_DOC}"),
    end: str | None = Query(None, description=f"default now. {WINDOW_DOC}"),
    model_version: str | None = Query(None),
    reference: str | None = Query(None, description="reference name; default the newest"),
    join_key: str | None = Query(
        None, description="request_id, or a feature naming the entity in both data sets"
    ),
    test: list[str] | None = Query(None, description=_TEST_DOC),
    threshold: list[str] | None = Query(None),
    settings: Settings = Depends(get_settings),
) -> dict[str, Any]:
    """Schema skew (missing, extra, retyped features, unseen categories), distribution skew
    per feature, and with `join_key` the feature-value mismatch rate and magnitude."""
    start_at, end_at = resolve_window(start, end)
    query = skew_pipeline.SkewQuery(
        model=model,
        start=start_at,
        end=end_at,
        model_version=model_version,
        reference=reference,
        join_key=join_key,
        tests=parse_feature_options(test, "test"),
        thresholds=parse_thresholds(threshold),
    )
    try:
        report = skew_pipeline.analyze_skew(request.app.state.db, query, settings=settings)
    except drift_pipeline.DriftInputError as error:
        raise ApiError(422, str(error)) from None
    return report.to_dict()
