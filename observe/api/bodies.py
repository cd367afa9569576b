"""Reading ingest bodies: size limits after decompression, JSON array or NDJSON, validation.

A batch is validated completely before anything is written, and every invalid item is reported
with its index (and NDJSON line) and field, so a batch is stored whole or not at all.
"""

from __future__ import annotations

import zlib
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, TypeAdapter, ValidationError

from observe.api.errors import ApiError, ItemError
from observe.schemas.common import describe_error, simplify_errors

M = TypeVar("M", bound=BaseModel)

MAX_REPORTED_ERRORS = 50
NDJSON_TYPES = {
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/x-jsonlines",
    "application/jsonlines",
    "application/json-lines",
}
JSON_TYPES = {"application/json", "text/json"}
_ENCODINGS = {
    "gzip": 16 + zlib.MAX_WBITS,
    "x-gzip": 16 + zlib.MAX_WBITS,
    "deflate": 32 + zlib.MAX_WBITS,
}


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The request body, decompressed, refusing more than `max_bytes` of decompressed data."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in _ENCODINGS and encoding not in ("", "identity"):
        raise ApiError(415, f"unsupported Content-Encoding {encoding!r}: use gzip, deflate or none")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise ApiError(413, f"body of {declared} bytes exceeds the limit of {max_bytes} bytes")
    inflater = _Inflater(_ENCODINGS[encoding], max_bytes) if encoding in _ENCODINGS else None
    parts: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        for part in inflater.feed(chunk) if inflater else [chunk]:
            total += len(part)
            if total > max_bytes:
                raise ApiError(
                    413, f"body exceeds the limit of {max_bytes} bytes after decompression"
                )
            parts.append(part)
    if inflater is not None and not inflater.finished:
        raise ApiError(400, f"the {encoding} body is truncated")
    return b"".join(parts)


class _Inflater:
    """Streaming gzip/deflate decoder that never expands more than the limit (+1 byte) at
    once, so a gzip bomb is stopped at the limit. Concatenated gzip members are decoded too."""

    def __init__(self, wbits: int, max_bytes: int) -> None:
        self._wbits = wbits
        self._room = max_bytes
        self._decompressor = zlib.decompressobj(wbits)
        self._started = False

    @property
    def finished(self) -> bool:
        return self._started and self._decompressor.eof

    def feed(self, data: bytes) -> list[bytes]:
        parts = []
        try:
            while data:
                if self._decompressor.eof:  # another gzip member follows
                    self._decompressor = zlib.decompressobj(self._wbits)
                self._started = True
                part = self._decompressor.decompress(data, max(self._room, 0) + 1)
                parts.append(part)
                self._room -= len(part)
                if self._room < 0:
                    break
                data = self._decompressor.unconsumed_tail
                if self._decompressor.eof:
                    data = self._decompressor.unused_data
        except zlib.error as error:
            raise ApiError(400, f"body is not valid compressed data: {error}") from None
        return parts


def parse_batch(
    body: bytes, content_type: str | None, item_type: type[M], *, max_items: int
) -> list[M]:
    """Validate a JSON array (or a single object) or NDJSON body into `item_type` items.

    Raises:
        ApiError: 400 for undecodable JSON, 415 for another media type, 413 for too many
            items, 422 naming each invalid item's index and field.
    """
    media_type = (content_type or "").split(";")[0].strip().lower()
    stripped = body.lstrip()
    if not stripped:
        raise ApiError(400, "empty body: send a JSON array or NDJSON")
    if media_type in NDJSON_TYPES:
        items = _parse_ndjson(body, item_type, max_items)
    elif media_type in JSON_TYPES | {""} and stripped[:1] == b"{":
        items = _parse_object_or_ndjson(body, item_type, max_items)
    elif media_type in JSON_TYPES or (media_type == "" and stripped[:1] == b"["):
        items = _parse_array(body, item_type, max_items)
    else:
        raise ApiError(
            415,
            f"unsupported Content-Type {media_type or 'missing'!r}: "
            "use application/json or application/x-ndjson",
        )
    if not items:
        raise ApiError(422, "the batch is empty")
    return items


def _parse_array(body: bytes, item_type: type[M], max_items: int) -> list[M]:
    adapter: TypeAdapter[list[M]] = _list_adapter(item_type)
    try:
        items = adapter.validate_json(body)
    except ValidationError as error:
        raise _validation_error(error, item_type) from None
    _check_count(len(items), max_items)
    return items


def _parse_object_or_ndjson(body: bytes, item_type: type[M], max_items: int) -> list[M]:
    """One JSON object, which may span lines (pretty-printed), or NDJSON sent as JSON."""
    try:
        return [item_type.model_validate_json(body)]
    except ValidationError as error:
        details = simplify_errors(error.errors())
        if any(detail["type"] == "json_invalid" for detail in details):
            return _parse_ndjson(body, item_type, max_items)
        raise _report(
            [_item_error(detail, index=0, line=None, loc=detail["loc"]) for detail in details]
        ) from None


def _parse_ndjson(body: bytes, item_type: type[M], max_items: int) -> list[M]:
    items: list[M] = []
    errors: list[ItemError] = []
    index = -1
    for line_number, line in enumerate(body.split(b"\n"), start=1):
        if not line.strip():
            continue
        index += 1
        _check_count(index + 1, max_items)
        try:
            items.append(item_type.model_validate_json(line))
        except ValidationError as error:
            for detail in simplify_errors(error.errors()):
                if detail["type"] == "json_invalid":
                    raise ApiError(
                        400, f"line {line_number} is not valid JSON: {detail['msg']}"
                    ) from None
                errors.append(_item_error(detail, index=index, line=line_number, loc=detail["loc"]))
    if errors:
        raise _report(errors)
    return items


def _check_count(count: int, max_items: int) -> None:
    if count > max_items:
        raise ApiError(413, f"batch has more than {max_items} items; split it")


def _validation_error(error: ValidationError, item_type: type[BaseModel]) -> ApiError:
    errors = []
    for detail in simplify_errors(error.errors()):
        loc = detail["loc"]
        if detail["type"] == "json_invalid":
            return ApiError(400, f"body is not valid JSON: {detail['msg']}")
        if not loc:
            return ApiError(
                422,
                f"body must be a JSON array of {item_type.__name__.removesuffix('In')} objects "
                "or NDJSON",
            )
        errors.append(_item_error(detail, index=int(loc[0]), line=None, loc=loc[1:]))
    return _report(errors)


def _item_error(detail: Any, *, index: int, line: int | None, loc: tuple[Any, ...]) -> ItemError:
    field, message = describe_error(detail, loc)
    return ItemError(index=index, line=line, field=field, message=message)


def _report(errors: list[ItemError]) -> ApiError:
    first = errors[0]
    where = f"item {first.index}" + (f" (line {first.line})" if first.line else "")
    field = f" field {first.field}" if first.field else ""
    more = f" and {len(errors) - 1} more" if len(errors) > 1 else ""
    detail = f"invalid {where}{field}: {first.message}{more}; nothing of this batch was stored"
    return ApiError(422, detail, errors=errors[:MAX_REPORTED_ERRORS])


_ADAPTERS: dict[type, TypeAdapter[Any]] = {}


def _list_adapter(item_type: type[M]) -> TypeAdapter[list[M]]:
    adapter = _ADAPTERS.get(item_type)
    if adapter is None:
        adapter = _ADAPTERS[item_type] = TypeAdapter(list[item_type])  # type: ignore[valid-type]
    return adapter
