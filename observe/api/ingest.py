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


def _add_batch_route(
    path: str,
    kind: BatchKind,
    item_type: type[BaseModel],
    *,
    name: str,
    summary: str,
    description: str,
) -> None:
    """Register POST `path`: a batch of `item_type`, committed by the writer as `kind`.

    The four batch routes differ only in these values. `name` is the handler's name and
    `description` its docstring: the OpenAPI document shows them, `description` cleaned of its
    indentation.
    """

    async def endpoint(
        request: Request,
        settings: Settings = Depends(get_settings),
        writer: Writer = Depends(get_writer),
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
        return IngestResponse(
            accepted=counts.accepted, new=counts.new, duplicates=counts.duplicates
        )

    endpoint.__name__ = endpoint.__qualname__ = name
    endpoint.__doc__ = description
    router.post(
        path,
        response_model=IngestResponse,
        responses=_ERRORS,
        openapi_extra=_body_doc(item_type),
        summary=summary,
    )(endpoint)


_add_batch_route(
    "/records",
    BatchKind.RECORDS,
    InferenceRecordIn,
    name="create_records",
    summary="Ingest inference records",
    description="""
    Store inference records. A repeated (model, request_id) is counted as a duplicate and not
    stored again, so retrying a batch is safe.""",
)
_add_batch_route(
    "/labels",
    BatchKind.LABELS,
    LabelIn,
    name="create_labels",
    summary="Ingest late ground-truth labels",
    description="""
    Attach ground truth to predictions by model and request_id; the record may arrive before
    or after its label. `new` counts labels stored or changed, `duplicates` those that changed
    nothing (or were older than the stored label).""",
)
_add_batch_route(
    "/events",
    BatchKind.EVENTS,
    EventIn,
    name="create_events",
    summary="Ingest deploy and change events",
    description="""
    Store deploys, rollbacks, canaries, config changes, scale-outs and incidents. An event
    identical to a stored one is a duplicate.""",
)
_add_batch_route(
    "/metrics",
    BatchKind.METRICS,
    MetricSampleIn,
    name="create_metric_samples",
    summary="Ingest GPU, host and queue metric samples",
    description="""
    Store metric samples; a repeat of (host, resource, name, timestamp) is a duplicate.""",
)
