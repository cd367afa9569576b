"""API errors: one JSON shape for every 4xx/5xx, and the handlers that produce it.

Body: ``{"detail": "...", "errors": [{"index": 3, "field": "latency_ms", "message": "..."}]}``;
`errors` is present only for per-item validation failures.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from observe.pipeline.writer import StoreUnavailable, WriterOverloaded
from observe.schemas.common import describe_error

log = logging.getLogger(__name__)


class ItemError(BaseModel):
    index: int | None = None
    line: int | None = None
    field: str | None = None
    message: str


class ErrorBody(BaseModel):
    detail: str
    errors: list[ItemError] | None = None


class ApiError(Exception):
    """An error with its HTTP status, raised anywhere below a route."""

    def __init__(
        self,
        status_code: int,
        detail: str,
        *,
        errors: list[ItemError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}


def error_response(
    status_code: int,
    detail: str,
    *,
    errors: list[ItemError] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"detail": detail}
    if errors is not None:
        body["errors"] = [error.model_dump(exclude_none=True) for error in errors]
    return JSONResponse(body, status_code=status_code, headers=headers)


#: Documented error responses, for routes' `responses=`.
def documented(*codes: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        400: "Malformed request (undecodable body, bad parameter)",
        401: "Missing or unknown API key",
        403: "API key lacks the needed scope",
        404: "Not found",
        413: "Body larger than the limit (counted after decompression) or too many items",
        415: "Unsupported Content-Type or Content-Encoding",
        422: "Invalid items; `errors` names the index and field of each",
        429: "Write queue full; retry after Retry-After seconds",
        503: "Database unavailable or slow; retry after Retry-After seconds (retries are safe)",
    }
    return {code: {"model": ErrorBody, "description": descriptions[code]} for code in codes}


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(WriterOverloaded, _overloaded)
    app.add_exception_handler(StoreUnavailable, _unavailable)
    app.add_exception_handler(OperationalError, _unavailable)
    app.add_exception_handler(DataError, _refused_by_database)
    app.add_exception_handler(IntegrityError, _refused_by_database)


async def _api_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiError)
    return error_response(
        error.status_code, error.detail, errors=error.errors, headers=error.headers
    )


async def _request_validation_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    items = []
    for detail in error.errors():
        field, message = describe_error(detail, tuple(detail["loc"][1:]))
        items.append(ItemError(field=field, message=message))
    summary = "; ".join(
        f"{item.field}: {item.message}" if item.field else item.message for item in items[:5]
    )
    status = 422
    return error_response(status, f"invalid request: {summary}", errors=items)


async def _http_exception(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    return error_response(error.status_code, str(error.detail), headers=dict(error.headers or {}))


async def _overloaded(_request: Request, error: Exception) -> JSONResponse:
    return error_response(429, str(error), headers={"Retry-After": "1"})


async def _unavailable(_request: Request, error: Exception) -> JSONResponse:
    log.warning("database unavailable: %s", str(error).splitlines()[0] if str(error) else error)
    detail = str(error) if isinstance(error, StoreUnavailable) else "the database is unavailable"
    return error_response(503, f"{detail}; retrying is safe", headers={"Retry-After": "5"})


async def _refused_by_database(_request: Request, error: Exception) -> JSONResponse:
    orig = getattr(error, "orig", None)
    reason = str(orig or error).strip().splitlines()[0]
    return error_response(422, f"the database refused the data: {reason}")
