"""GET /api/v1/records: stored records by model, version, tag, status and time, paginated."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from observe.api.deps import get_session
from observe.api.errors import ApiError, documented
from observe.api.params import parse_tag_filters, parse_time
from observe.api.security import requires
from observe.auth import Scope
from observe.storage import records as record_store

router = APIRouter(prefix="/api/v1", tags=["records"])


class RecordOut(BaseModel):
    model: str
    model_version: str
    request_id: str
    timestamp: dt.datetime
    latency_ms: float
    status: str
    error: str | None
    features: dict[str, Any] | None
    prediction: Any
    label: Any = Field(description="ground truth, inline or arrived later; null if none")
    tags: dict[str, str] | None
    input_size: float | None
    trace_id: str | None
    received_at: dt.datetime


class RecordPageOut(BaseModel):
    items: list[RecordOut]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null at the end"
    )


@router.get(
    "/records",
    response_model=RecordPageOut,
    dependencies=[requires(Scope.READ)],
    responses=documented(400, 401, 403, 422),
    summary="List records, newest first",
)
def list_records(
    model: str = Query(..., description="model name"),
    model_version: str | None = Query(None),
    tag: list[str] | None = Query(None, description="key:value, repeatable (all must match)"),
    status: Literal["ok", "error"] | None = Query(None),
    start: str | None = Query(None, description="RFC 3339, epoch seconds or -24h (inclusive)"),
    end: str | None = Query(None, description="RFC 3339, epoch seconds or -1h (exclusive)"),
    limit: int = Query(100, ge=1, le=1000),
    cursor: str | None = Query(None, description="next_cursor of the previous page"),
    session: Session = Depends(get_session),
) -> RecordPageOut:
    """Records with their labels, newest first. Pages are keyset-paginated, so new records
    arriving meanwhile do not shift or repeat items across pages."""
    try:
        page = record_store.load_records(
            session,
            model=model,
            start=parse_time(start, "start"),
            end=parse_time(end, "end"),
            model_version=model_version,
            tags=parse_tag_filters(tag),
            status=status,
            limit=limit,
            cursor=cursor,
        )
    except ValueError as error:
        raise ApiError(400, str(error)) from None
    return RecordPageOut(
        items=[RecordOut(**item) for item in page.items], next_cursor=page.next_cursor
    )
