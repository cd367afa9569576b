"""GET /api/v1/diagnoses: walk the data -> infra -> model checklist for a model and window."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from observe.api.deps import get_session, get_settings
from observe.api.errors import ApiError, documented
from observe.api.params import parse_time, resolve_window
from observe.api.security import requires
from observe.auth import Scope
from observe.config import Settings
from observe.pipeline.diagnosis import Windows, run_diagnosis
from observe.schemas.diagnosis import DiagnosisOut
from observe.storage import models as model_store

router = APIRouter(prefix="/api/v1", tags=["diagnoses"], dependencies=[requires(Scope.READ)])


@router.get(
    "/diagnoses",
    response_model=DiagnosisOut,
    responses=documented(401, 403, 404, 422),
    summary="Diagnose a model's window: checklist steps and ranked causes",
)
async def get_diagnosis(
    model: str = Query(..., description="model name"),
    start: str | None = Query(None, description="window start (default: 1 hour before end)"),
    end: str | None = Query(None, description="window end (default: now)"),
    baseline_start: str | None = Query(None, description="default: the same length before"),
    baseline_end: str | None = Query(None, description="default: the window's start"),
    session: Session = Depends(get_session),
    settings: Settings = Depends(get_settings),
) -> DiagnosisOut:
    """Compare the window with its baseline: isolate (symptom, versions, hosts, changes,
    traffic, errors), data (input size, drift, nulls, dependencies), infra (GPU saturation,
    host health) and model (version latency, spans, profiler operators); then rank the causes.
    An empty `causes` list means nothing stands out."""
    start_at, end_at = resolve_window(start, end, default_seconds=3600)
    try:
        windows = Windows.resolve(
            start_at,
            end_at,
            parse_time(baseline_start, "baseline_start"),
            parse_time(baseline_end, "baseline_end"),
        )
    except ValueError as error:
        raise ApiError(422, str(error)) from None
    if model_store.get_model(session, model) is None:
        raise ApiError(404, f"no model named {model!r}")
    diagnosis = await run_in_threadpool(
        run_diagnosis, session, model=model, windows=windows, rollup_tags=settings.rollup_tags
    )
    return DiagnosisOut.model_validate(diagnosis.as_dict())
