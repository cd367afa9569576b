"""POST /api/v1/kserve: the KServe / Seldon payload-logger sink (CloudEvents).

Point an InferenceService's logger at it (``spec.predictor.logger.url``). The payload logger
cannot send headers, so the key may also travel as ``?api_key=`` (an ingest-scoped key; access
logs show it as ``***``). A 200 means the events are committed: stored to wait for their
partner, or joined with it into inference records.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from collectors.kserve import InferenceHalf, KServePayloadError
from observe.api.bodies import read_body
from observe.api.deps import get_settings, get_writer
from observe.api.errors import ApiError, documented
from observe.api.security import requires
from observe.auth import Scope
from observe.config import Settings
from observe.pipeline.kserve import KServeCounts, decode_kserve_request
from observe.pipeline.writer import BatchKind, StoreUnavailable, Writer, utc_now
from observe.schemas.common import NO_NUL

router = APIRouter(
    prefix="/api/v1", tags=["ingest"], dependencies=[requires(Scope.INGEST, allow_query_key=True)]
)


class KServeResponse(BaseModel):
    """What became of the events of one request."""

    accepted: int
    new: int
    duplicates: int
    pending: int


_BODY_DOC = {
    "requestBody": {
        "required": True,
        "description": "A CloudEvent in binary mode (ce-id, ce-type, ce-source, ce-specversion "
        "headers; the inference payload as body), structured mode "
        "(application/cloudevents+json) or a batch (application/cloudevents-batch+json).",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/cloudevents+json": {"schema": {"type": "object"}},
            "application/cloudevents-batch+json": {"schema": {"type": "array"}},
        },
    }
}


def _name_query(description: str) -> Any:
    return Query(None, min_length=1, max_length=200, pattern=NO_NUL, description=description)


@router.post(
    "/kserve",
    response_model=KServeResponse,
    responses=documented(400, 401, 403, 413, 415, 422, 429, 503),
    openapi_extra=_BODY_DOC,
    summary="Ingest KServe / Seldon payload-logger CloudEvents",
)
async def create_kserve_events(
    request: Request,
    model: str | None = _name_query(
        "Model name for these events' records (default: the "
        "ce-inferenceservicename attribute, else the V2 model_name)."
    ),
    model_version: str | None = _name_query(
        "Model version (default: the V2 response's model_version, else unknown)."
    ),
    settings: Settings = Depends(get_settings),
    writer: Writer = Depends(get_writer),
) -> KServeResponse:
    """Store the request and response events of inferences; the pair of one inference (same
    CloudEvents source and id, in either order) becomes one record per instance. `model` and
    `model_version` override what the events say. `new` counts records stored now,
    `duplicates` events received before, `pending` events waiting for their partner."""
    body = await read_body(request, settings.max_body_bytes)
    overrides = {k: v for k, v in {"model": model, "model_version": model_version}.items() if v}
    halves = await run_in_threadpool(
        _decode, dict(request.headers), body, settings.kserve_max_features, overrides
    )
    if len(halves) > settings.max_batch_records:
        raise ApiError(413, f"batch has more than {settings.max_batch_records} events; split it")
    future = writer.submit(BatchKind.KSERVE, halves)
    try:
        counts = await asyncio.wait_for(asyncio.wrap_future(future), settings.write_timeout_seconds)
    except TimeoutError:
        raise StoreUnavailable(
            f"the events were not committed within {settings.write_timeout_seconds:g} s"
        ) from None
    except KServePayloadError as error:
        raise ApiError(error.status, f"{error}; nothing of this request was stored") from None
    assert isinstance(counts, KServeCounts)
    return KServeResponse(
        accepted=counts.accepted,
        new=counts.new,
        duplicates=counts.duplicates,
        pending=counts.pending,
    )


def _decode(
    headers: dict[str, str], body: bytes, max_features: int, overrides: dict[str, str]
) -> list[InferenceHalf]:
    if not body.strip() and "ce-specversion" not in {k.lower() for k in headers}:
        raise ApiError(400, "empty body: send a CloudEvent")
    try:
        return decode_kserve_request(
            headers, body, max_features=max_features, overrides=overrides, received_at=utc_now()
        )
    except KServePayloadError as error:
        raise ApiError(error.status, str(error)) from None
