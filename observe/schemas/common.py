"""Checks shared by every ingested type: timestamps, names, free-form JSON values.

Each raises ValueError with a message that names what is wrong; pydantic adds the field path.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema

MIN_TIMESTAMP = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MAX_EPOCH_SECONDS = 253_402_300_799.0  # 9999-12-31T23:59:59Z
MAX_JSON_DEPTH = 32
MAX_STRING_LENGTH = 65_536
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def parse_timestamp(value: Any) -> dt.datetime:
    """An RFC 3339 string or epoch seconds, as an aware UTC datetime.

    Strings without an offset are taken as UTC. Numbers are seconds since the epoch; a number
    that only makes sense as milliseconds is refused rather than guessed at.
    """
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, bool):
        raise ValueError("timestamp must be an RFC 3339 string or epoch seconds, not a boolean")
    elif isinstance(value, int | float):
        parsed = _from_epoch_seconds(float(value))
    elif isinstance(value, str):
        parsed = _from_rfc3339(value)
    else:
        raise ValueError("timestamp must be an RFC 3339 string or epoch seconds")
    parsed = parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)
    if parsed < MIN_TIMESTAMP:
        raise ValueError("timestamp is before 1970-01-01")
    return parsed


def _from_epoch_seconds(seconds: float) -> dt.datetime:
    if not math.isfinite(seconds):
        raise ValueError("timestamp must be a finite number of epoch seconds")
    if seconds < 0:
        raise ValueError("timestamp is before 1970-01-01")
    if seconds > MAX_EPOCH_SECONDS:
        hint = " (it looks like milliseconds)" if seconds < MAX_EPOCH_SECONDS * 1000 else ""
        raise ValueError(f"timestamp {seconds:.0f} is beyond year 9999 in epoch seconds{hint}")
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


def _from_rfc3339(text: str) -> dt.datetime:
    if len(text) > 64:
        raise ValueError("timestamp string is too long for RFC 3339")
    try:
        return dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"timestamp {text!r} is not an RFC 3339 date-time") from None


def check_text(value: str) -> str:
    """Refuse NUL characters, which neither database can store in text."""
    if "\x00" in value:
        raise ValueError("string contains a NUL character (\\u0000)")
    return value


def check_json_value(value: Any, depth: int = 0) -> Any:
    """Refuse what JSON columns cannot store faithfully: NaN/Infinity, integers beyond 64 bits,
    NUL characters, over-long strings and nesting deeper than `MAX_JSON_DEPTH`."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError("integer does not fit in 64 bits")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("NaN and Infinity are not valid JSON numbers")
    elif isinstance(value, str):
        _check_json_string(value)
    elif isinstance(value, dict | list):
        if depth >= MAX_JSON_DEPTH:
            raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(key, str):
                _check_json_string(key)
            check_json_value(item, depth + 1)
    else:
        raise ValueError(f"unsupported JSON value of type {type(value).__name__}")
    return value


def _check_json_string(value: str) -> None:
    check_text(value)
    if len(value) > MAX_STRING_LENGTH:
        raise ValueError(f"string longer than {MAX_STRING_LENGTH} characters")


def check_features(features: dict[str, Any]) -> dict[str, Any]:
    """Feature values are numbers, strings, booleans or null (DESIGN 3.1)."""
    for name, value in features.items():
        _check_json_string(name)
        if value is None or isinstance(value, bool | str):
            if isinstance(value, str):
                _check_json_string(value)
            continue
        if isinstance(value, int | float):
            check_json_value(value)
            continue
        raise ValueError(
            f"feature {name!r} must be a number, string, boolean or null, "
            f"not {type(value).__name__}"
        )
    return features


Timestamp = Annotated[
    dt.datetime,
    BeforeValidator(parse_timestamp),
    WithJsonSchema(
        {
            "anyOf": [{"type": "string", "format": "date-time"}, {"type": "number"}],
            "description": "RFC 3339 date-time (UTC when no offset) or epoch seconds",
        }
    ),
]
Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(check_text)]
Text = Annotated[str, Field(max_length=MAX_STRING_LENGTH), AfterValidator(check_text)]
JsonValue = Annotated[
    Any,
    AfterValidator(check_json_value),
    WithJsonSchema({"description": "any JSON value: number, string, boolean, object or array"}),
]
Features = Annotated[
    dict[str, Any],
    AfterValidator(check_features),
    WithJsonSchema(
        {
            "type": "object",
            "additionalProperties": {"type": ["number", "string", "boolean", "null"]},
            "description": "feature name -> number, string, boolean or null",
        }
    ),
]
Tags = dict[Annotated[str, Field(min_length=1, max_length=100), AfterValidator(check_text)], Name]
