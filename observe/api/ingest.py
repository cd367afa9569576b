"""POST /api/v1/records, /labels, /events, /metrics: batches as JSON arrays or NDJSON.

A 200 means the whole batch is committed; any 4xx means nothing of it was stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, TypeAdapter
from starlette.concurrency import run_in_threadpool

from observe.api.bodies import parse_batch, read_body
from observe.api.deps import get_settings, get_writer
from observe.api.errors import documented
from observe.api.security import requires
from observe.auth import Scope
from observe.config import Settings
from observe.pipeline.ingest import IngestCounts
from observe.pipeline.writer import BatchKind, StoreUnavailable, Writer
from observe.schemas.records import EventIn, InferenceRecordIn, LabelIn, MetricSampleIn

router = APIRouter(prefix="/api/v1", tags=["ingest"], dependencies=[requires(Scope.INGEST)])


class IngestResponse(BaseModel):
    """Counts for a committed batch."""

    accepted: int
    new: int
    duplicates: int


def _body_doc(item_type: type[BaseModel]) -> dict[str, Any]:
    schema = TypeAdapter(list[item_type]).json_schema(ref_template="#/components/schemas/{model}")  # type: ignore[valid-type]
    schema.pop("$defs", None)
    return {
        "requestBody": {
            "required": True,
            "description": "A JSON array, or NDJSON (one object per line); gzip or deflate "
            "Content-Encoding accepted.",
            "content": {
                "application/json": {"schema": schema},
                "application/x-ndjson": {
                    "schema": {"$ref": f"#/components/schemas/{item_type.__name__}"}
                },
            },
        }
    }


_ERRORS = documented(400, 401, 403, 413, 415, 422, 429, 503)


async def _ingest(
    request: Request,
    settings: Settings,
    writer: Writer,
    kind: BatchKind,
    item_type: type[BaseModel],
) -> IngestResponse:
    body = await read_body(request, settings.max_body_bytes)
    items = await run_in_threadpool(
        parse_batch,
        body,
        request.headers.get("content-type"),
        item_type,
        max_items=settings.max_batch_records,
    )
    counts = await commit_batch(writer, kind, items, settings.write_timeout_seconds)
    return IngestResponse(accepted=counts.accepted, new=counts.new, duplicates=counts.duplicates)


async def commit_batch(
    writer: Writer, kind: BatchKind, items: Sequence[Any], timeout_seconds: float
) -> IngestCounts:
    """Hand a batch to the writer and wait until it is committed.

    Raises:
        WriterOverloaded: the write queue is full (429).
        StoreUnavailable: not committed within `timeout_seconds` (503).
    """
    future = writer.submit(kind, items)
    try:
        return await asyncio.wait_for(asyncio.wrap_future(future), timeout_seconds)
    except TimeoutError:
        raise StoreUnavailable(
            f"the batch was not committed within {timeout_seconds:g} s"
        ) from None


@router.post(
    "/records",
    response_model=IngestResponse,
    responses=_ERRORS,
    openapi_extra=_body_doc(InferenceRecordIn),
    summary="Ingest inference records",
)
async def create_records(
    request: Request,
    settings: Settings = Depends(get_settings),
    writer: Writer = Depends(get_writer),
) -> IngestResponse:
    """Store inference records. A repeated (model, request_id) is counted as a duplicate and not
    stored again, so retrying a batch is safe."""
    return await _ingest(request, settings, writer, BatchKind.RECORDS, InferenceRecordIn)


@router.post(
    "/labels",
    response_model=IngestResponse,
    responses=_ERRORS,
    openapi_extra=_body_doc(LabelIn),
    summary="Ingest late ground-truth labels",
)
async def create_labels(
    request: Request,
    settings: Settings = Depends(get_settings),
    writer: Writer = Depends(get_writer),
) -> IngestResponse:
    """Attach ground truth to predictions by model and request_id; the record may arrive before
    or after its label. `new` counts labels stored or changed, `duplicates` those that changed
    nothing (or were older than the stored label)."""
    return await _ingest(request, settings, writer, BatchKind.LABELS, LabelIn)


@router.post(
    "/events",
    response_model=IngestResponse,
    responses=_ERRORS,
    openapi_extra=_body_doc(EventIn),
    summary="Ingest deploy and change events",
)
async def create_events(
    request: Request,
    settings: Settings = Depends(get_settings),
    writer: Writer = Depends(get_writer),
) -> IngestResponse:
    """Store deploys, rollbacks, canaries, config changes, scale-outs and incidents. An event
    identical to a stored one is a duplicate."""
    return await _ingest(request, settings, writer, BatchKind.EVENTS, EventIn)


@router.post(
    "/metrics",
    response_model=IngestResponse,
    responses=_ERRORS,
    openapi_extra=_body_doc(MetricSampleIn),
    summary="Ingest GPU, host and queue metric samples",
)
async def create_metric_samples(
    request: Request,
    settings: Settings = Depends(get_settings),
    writer: Writer = Depends(get_writer),
) -> IngestResponse:
    """Store metric samples; a repeat of (host, resource, name, timestamp) is a duplicate."""
    return await _ingest(request, settings, writer, BatchKind.METRICS, MetricSampleIn)
