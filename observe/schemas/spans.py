"""The ingested span type of DESIGN 3.1: an OpenTelemetry span as OTLP carries it."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from observe.schemas.common import (
    MAX_JSON_DEPTH,
    MAX_STRING_LENGTH,
    NO_NUL,
    Name,
    Text,
    check_json_value,
)

MAX_SPAN_NAME_LENGTH = 500
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MAX_UNIX_NANO = int((dt.datetime(9999, 12, 31, tzinfo=dt.UTC) - _EPOCH).total_seconds()) * 10**9
_HEX = re.compile(r"^[0-9a-f]*$")
_LONG_NUMBER = re.compile(rb"[0-9]{19}")


def _hex_id(length: int, what: str) -> Any:
    def check(value: str) -> str:
        value = value.lower()
        if len(value) != length or not _HEX.match(value):
            raise ValueError(f"{what} must be {length} hex digits, got {value[:80]!r}")
        if value == "0" * length:
            raise ValueError(f"{what} of all zeros is invalid")
        return value

    return AfterValidator(check)


def _check_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """Refuse what a JSON column cannot store (see check_json_value), naming the attribute.

    Most attributes are short scalars: one orjson encoding shows that they are fine (no NUL,
    nothing long or deep, no integer beyond 64 bits); only the rest are walked value by value.
    """
    try:
        encoded = orjson.dumps(attributes)
    except (TypeError, orjson.JSONEncodeError):
        encoded = None
    if encoded is not None and not _may_be_refused(encoded):
        return attributes
    for key, value in attributes.items():
        if not isinstance(key, str) or "\x00" in key or len(key) > MAX_STRING_LENGTH:
            raise ValueError(f"attribute key {str(key)[:80]!r} contains NUL or is too long")
        try:
            check_json_value(value)
        except ValueError as error:
            raise ValueError(f"attribute {key!r}: {error}") from None
    return attributes


def _may_be_refused(encoded: bytes) -> bool:
    """Whether an encoding may hide a value to refuse: a NUL, a long string, deep nesting, an
    integer of 19 digits or more (orjson writes unsigned 64-bit ones), or a NaN (which orjson
    writes as null)."""
    return (
        b"\\u0000" in encoded
        or len(encoded) > MAX_STRING_LENGTH
        or encoded.count(b"[") + encoded.count(b"{") > MAX_JSON_DEPTH
        or b"null" in encoded
        or _LONG_NUMBER.search(encoded) is not None
    )


TraceIdHex = Annotated[str, _hex_id(32, "trace id")]
SpanIdHex = Annotated[str, _hex_id(16, "span id")]
SpanName = Annotated[str, Field(max_length=MAX_SPAN_NAME_LENGTH, pattern=NO_NUL)]
UnixNano = Annotated[int, Field(strict=True, ge=0, le=_MAX_UNIX_NANO)]
Attributes = Annotated[dict[str, Any], AfterValidator(_check_attributes)]


def unix_nano_to_datetime(unix_nano: int) -> dt.datetime:
    """UTC datetime of nanoseconds since the epoch, truncated to microseconds."""
    return _EPOCH + dt.timedelta(microseconds=unix_nano // 1000)


class SpanIn(BaseModel):
    """One span. (trace_id, span_id) identifies it: a span sent again is not stored twice.

    `model` is the model the span names itself (in its own or its resource's attributes), if
    any; spans that name none are linked to their trace's model when they are stored.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    trace_id: TraceIdHex
    span_id: SpanIdHex
    parent_span_id: SpanIdHex | None = None
    name: SpanName
    service_name: Name
    kind: Literal["unspecified", "internal", "server", "client", "producer", "consumer"]
    start_time_unix_nano: UnixNano
    end_time_unix_nano: UnixNano
    status_code: Literal["unset", "ok", "error"] = "unset"
    status_message: Text | None = None
    attributes: Attributes | None = None
    resource_attributes: Attributes | None = None
    model: Name | None = None

    @model_validator(mode="after")
    def _check_times(self) -> SpanIn:
        if self.start_time_unix_nano == 0:
            raise ValueError("startTimeUnixNano is missing (0)")
        if self.end_time_unix_nano < self.start_time_unix_nano:
            raise ValueError("endTimeUnixNano is before startTimeUnixNano")
        return self

    @property
    def start_at(self) -> dt.datetime:
        return unix_nano_to_datetime(self.start_time_unix_nano)

    @property
    def end_at(self) -> dt.datetime:
        return unix_nano_to_datetime(self.end_time_unix_nano)

    @property
    def duration_ms(self) -> float:
        return (self.end_time_unix_nano - self.start_time_unix_nano) / 1e6

    @property
    def is_error(self) -> bool:
        return self.status_code == "error"
