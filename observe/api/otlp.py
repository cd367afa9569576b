"""POST /v1/traces: the OTLP/HTTP trace receiver, so that any OpenTelemetry exporter can send here.

Answers as the OTLP specification (OTLP/HTTP) says:

- 200 with an `ExportTraceServiceResponse` in the request's encoding once the valid spans are
  committed; spans that are invalid (bad ids, end before start, ...) are rejected one by one and
  counted in `partial_success` (`rejected_spans`, `error_message`) while the rest are stored;
- 400 for a body that does not decode, 413 for one over the size limit after decompression (or
  with more spans than a batch may hold), 415 for another Content-Type or Content-Encoding,
  401/403 without a key granting `ingest`, 429 and 503 with Retry-After when the writer pushes
  back (retryable: a span sent again is not stored twice);
- every 4xx and 5xx body is a `google.rpc.Status` in the request's encoding (JSON when the
  Content-Type was not understood).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from collectors.otlp import OtlpDecodeError, decode_traces_json, decode_traces_protobuf
from observe.api.bodies import read_body
from observe.api.deps import get_settings, get_writer
from observe.api.errors import ApiError, ErrorBody
from observe.api.ingest import commit_batch
from observe.api.security import requires
from observe.auth import Scope
from observe.config import Settings
from observe.pipeline.spans import ValidatedSpans, validate_spans
from observe.pipeline.writer import BatchKind, StoreUnavailable, Writer, WriterOverloaded

log = logging.getLogger(__name__)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
PROTOBUF_TYPES = {PROTOBUF, "application/protobuf"}
JSON_TYPES = {JSON}
#: google.rpc.Code of each HTTP status, for Status.code (informational in OTLP/HTTP).
_GRPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 413: 8, 415: 3, 422: 3, 429: 8, 503: 14}
_UNKNOWN_CODE = 2


class OtlpRoute(APIRoute):
    """A route whose errors, authentication and back-pressure included, are answered as
    `google.rpc.Status` messages in the request's encoding."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as error:
                failure = _failure(error)
                if failure is None:
                    raise
                status, message, headers = failure
                return status_response(request, status, message, headers)

        return handle


router = APIRouter(tags=["otlp"], route_class=OtlpRoute, dependencies=[requires(Scope.INGEST)])


def _failure(error: Exception) -> tuple[int, str, dict[str, str]] | None:
    """(HTTP status, message, headers) of an error, or None for one to re-raise."""
    if isinstance(error, ApiError):
        return error.status_code, error.detail, error.headers
    if isinstance(error, WriterOverloaded):
        return 429, str(error), {"Retry-After": "1"}
    if isinstance(error, StoreUnavailable | OperationalError):
        log.warning("database unavailable: %s", str(error).strip().splitlines()[0])
        detail = (
            str(error) if isinstance(error, StoreUnavailable) else "the database is unavailable"
        )
        return 503, f"{detail}; retrying is safe", {"Retry-After": "5"}
    if isinstance(error, DataError | IntegrityError):
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        return 400, f"the database refused the data: {reason}", {}
    if isinstance(error, RequestValidationError):
        return 400, f"invalid request: {error.errors()}", {}
    if isinstance(error, StarletteHTTPException):
        return error.status_code, str(error.detail), dict(error.headers or {})
    return None


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def status_response(
    request: Request, status: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    """A `google.rpc.Status` body: protobuf for a protobuf request, else JSON."""
    code = _GRPC_CODES.get(status, _UNKNOWN_CODE)
    if media_type(request.headers.get("content-type")) in PROTOBUF_TYPES:
        content = encode_status(code, message)
        return Response(content, status_code=status, media_type=PROTOBUF, headers=headers)
    body = orjson.dumps({"code": code, "message": message})
    return Response(body, status_code=status, media_type=JSON, headers=headers)


def encode_status(code: int, message: str) -> bytes:
    """The protobuf encoding of google.rpc.Status{code, message} (field 1: int32, field 2:
    string); details are left out."""
    encoded = message.encode()
    parts = [b"\x08" + _varint(code)] if code else []
    if encoded:
        parts.append(b"\x12" + _varint(len(encoded)) + encoded)
    return b"".join(parts)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def export_response(encoding: str, validated: ValidatedSpans) -> Response:
    """The ExportTraceServiceResponse: partial_success set only when spans were rejected."""
    rejected = len(validated.rejections)
    message = validated.error_message()
    if encoding == PROTOBUF:
        response = ExportTraceServiceResponse()
        if rejected:
            response.partial_success.rejected_spans = rejected
            response.partial_success.error_message = message
        return Response(response.SerializeToString(), media_type=PROTOBUF)
    body: dict[str, Any] = {}
    if rejected:  # int64 as a decimal string, per the proto3 JSON mapping
        body["partialSuccess"] = {"rejectedSpans": str(rejected), "errorMessage": message}
    return Response(orjson.dumps(body), media_type=JSON)


def _encoding(content_type: str | None) -> str:
    kind = media_type(content_type)
    if kind in PROTOBUF_TYPES:
        return PROTOBUF
    if kind in JSON_TYPES:
        return JSON
    raise ApiError(
        415,
        f"unsupported Content-Type {kind or 'missing'!r}: "
        "use application/x-protobuf or application/json (OTLP/HTTP)",
    )


def _decode(body: bytes, encoding: str, settings: Settings) -> ValidatedSpans:
    try:
        decoded = decode_traces_protobuf(body) if encoding == PROTOBUF else decode_traces_json(body)
    except OtlpDecodeError as error:
        raise ApiError(400, str(error)) from None
    if decoded.num_spans > settings.max_batch_records:
        raise ApiError(
            413,
            f"request has {decoded.num_spans} spans, more than the {settings.max_batch_records} "
            "a batch may hold; export smaller batches",
        )
    return validate_spans(decoded, model_attributes=settings.span_model_attributes)


_BODY_DOC = {
    "requestBody": {
        "required": True,
        "description": "An OTLP ExportTraceServiceRequest, binary protobuf or OTLP/JSON; gzip "
        "or deflate Content-Encoding accepted.",
        "content": {
            PROTOBUF: {"schema": {"type": "string", "format": "binary"}},
            JSON: {"schema": {"type": "object"}},
        },
    }
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": description}
    for code, description in {
        400: "Undecodable body (google.rpc.Status)",
        401: "Missing or unknown API key",
        403: "API key lacks the ingest scope",
        413: "Body over the limit after decompression, or too many spans",
        415: "Unsupported Content-Type or Content-Encoding",
        429: "Write queue full; retry after Retry-After seconds",
        503: "Database unavailable or slow; retry after Retry-After seconds",
    }.items()
}


@router.post(
    "/v1/traces",
    response_class=Response,
    responses={
        200: {
            "description": "ExportTraceServiceResponse in the request's encoding; "
            "partialSuccess counts spans rejected as invalid",
            "content": {PROTOBUF: {}, JSON: {}},
        },
        **_ERRORS,
    },
    openapi_extra=_BODY_DOC,
    summary="Receive OpenTelemetry spans (OTLP/HTTP)",
)
async def export_traces(
    request: Request,
    settings: Settings = Depends(get_settings),
    writer: Writer = Depends(get_writer),
) -> Response:
    """Store the spans of an OTLP export request. A 200 means the accepted spans are committed;
    a span sent again is not stored twice, so retrying an export is safe."""
    encoding = _encoding(request.headers.get("content-type"))
    body = await read_body(request, settings.max_body_bytes)
    validated = await run_in_threadpool(_decode, body, encoding, settings)
    if validated.spans:
        await commit_batch(writer, BatchKind.SPANS, validated.spans, settings.write_timeout_seconds)
    if validated.rejections:
        request.app.state.telemetry.items.labels("spans", "rejected").inc(len(validated.rejections))
    return export_response(encoding, validated)
