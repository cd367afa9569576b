"""Checks shared by every ingested type: timestamps, names, free-form JSON values.

Each raises ValueError with a message that names what is wrong; pydantic adds the field path.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
)

MIN_TIMESTAMP = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MAX_JSON_DEPTH = 32
MAX_STRING_LENGTH = 65_536
MAX_NAME_LENGTH = 200
MAX_TAG_KEY_LENGTH = 100
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


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


NO_NUL = r"^[^\x00]*$"
_TIMESTAMP_SCHEMA = {
    "anyOf": [{"type": "string", "format": "date-time"}, {"type": "number"}],
    "description": "RFC 3339 date-time (UTC when no offset) or epoch seconds "
    "(numbers above 2e10 are read as milliseconds)",
}


def _utc_since_1970(value: dt.datetime) -> dt.datetime:
    offset = value.utcoffset()
    if offset is None:
        value = value.replace(tzinfo=dt.UTC)
    # Compared before converting: near year 1 or 9999 an offset moves the UTC time out of the
    # datetime range, and astimezone raises OverflowError, which pydantic does not catch.
    if value < MIN_TIMESTAMP:
        raise ValueError("timestamp is before 1970-01-01")
    if offset:
        try:
            value = value.astimezone(dt.UTC)
        except OverflowError:
            raise ValueError("timestamp is after 9999-12-31 in UTC") from None
    return value


# Constraints are checked in pydantic-core (Rust) wherever possible: ingest validates tens of
# thousands of records a second, and a Python validator per field costs a third of that.
Timestamp = Annotated[
    dt.datetime, AfterValidator(_utc_since_1970), WithJsonSchema(_TIMESTAMP_SCHEMA)
]
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH, pattern=NO_NUL)]
Text = Annotated[str, Field(max_length=MAX_STRING_LENGTH, pattern=NO_NUL)]
JsonValue = Annotated[
    Any,
    AfterValidator(check_json_value),
    WithJsonSchema({"description": "any JSON value: number, string, boolean, object or array"}),
]


def check_features(features: dict[str, Any]) -> dict[str, Any]:
    """Refuse feature values that JSON columns cannot store: integers beyond 64 bits, NUL
    characters and over-long strings. Types are checked by pydantic-core before this runs."""
    for name, value in features.items():
        if "\x00" in name:
            raise ValueError(f"feature name {name!r} contains a NUL character (\\u0000)")
        kind = type(value)
        if kind is str:
            if "\x00" in value:
                raise ValueError(f"feature {name!r}: string contains a NUL character (\\u0000)")
            if len(value) > MAX_STRING_LENGTH:
                raise ValueError(
                    f"feature {name!r}: string longer than {MAX_STRING_LENGTH} characters"
                )
        elif kind is int and not INT64_MIN <= value <= INT64_MAX:
            raise ValueError(f"feature {name!r}: integer does not fit in 64 bits")
    return features


# Feature values are validated by a plain union in pydantic-core and one Python pass over the
# dict: constrained union members (int ranges, string patterns) cost twice as much per value,
# and a record carries dozens of values.
FeatureValue = StrictBool | StrictInt | StrictFloat | StrictStr | None
Features = Annotated[
    dict[Annotated[str, Field(min_length=1, max_length=MAX_STRING_LENGTH)], FeatureValue],
    AfterValidator(check_features),
    WithJsonSchema(
        {
            "type": "object",
            "additionalProperties": {"type": ["number", "string", "boolean", "null"]},
            "description": "feature name -> number, string, boolean or null",
        }
    ),
]
Tags = dict[
    Annotated[str, Field(min_length=1, max_length=MAX_TAG_KEY_LENGTH, pattern=NO_NUL)], Name
]

_TIMESTAMP_ADAPTER: TypeAdapter[dt.datetime] = TypeAdapter(Timestamp)


def parse_timestamp(value: Any) -> dt.datetime:
    """An RFC 3339 string or epoch seconds, as an aware UTC datetime, by the same rules as the
    `timestamp` field of ingested items (strings without an offset are UTC)."""
    try:
        return _TIMESTAMP_ADAPTER.validate_python(value)
    except ValidationError as error:
        raise ValueError(describe_error(error.errors()[0], ())[1]) from None


#: Branch names pydantic appends to the location of each failed union member.
_UNION_BRANCHES = {"bool", "int", "constrained-int", "float", "str", "constrained-str", "none"}


def simplify_errors(errors: list[Any]) -> list[Any]:
    """Collapse the per-branch errors of a union (one feature value) into one error."""
    simplified: list[Any] = []
    unions: dict[tuple[Any, ...], list[Any]] = {}
    for detail in errors:
        loc = tuple(detail["loc"])
        if loc and loc[-1] in _UNION_BRANCHES:
            if loc[:-1] not in unions:
                unions[loc[:-1]] = []
                simplified.append({"loc": loc[:-1], "union": unions[loc[:-1]]})
            unions[loc[:-1]].append(detail)
        else:
            simplified.append(detail)
    return [_merge_union(d) if "union" in d else d for d in simplified]


def _merge_union(entry: dict[str, Any]) -> dict[str, Any]:
    kinds = {detail["type"] for detail in entry["union"]}
    if "finite_number" in kinds:
        message = "NaN and Infinity are not valid JSON numbers"
    elif "string_pattern_mismatch" in kinds:
        message = "string contains a NUL character (\\u0000)"
    elif "string_too_long" in kinds:
        message = f"string longer than {MAX_STRING_LENGTH} characters"
    else:
        message = "must be a number, string, boolean or null"
    return {"loc": entry["loc"], "type": "value_error", "msg": message}


def describe_error(detail: Any, loc: tuple[Any, ...] | None = None) -> tuple[str | None, str]:
    """(dotted field path, readable message) of one pydantic error detail."""
    path = detail["loc"] if loc is None else loc
    message = str(detail["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if detail["type"] == "extra_forbidden":
        message = "unknown field"
    elif (
        detail["type"] == "string_pattern_mismatch"
        and detail.get("ctx", {}).get("pattern") == NO_NUL
    ):
        message = "string contains a NUL character (\\u0000)"
    elif detail["type"] == "missing":
        message = "field required"
    return ".".join(str(part) for part in path) or None, message
