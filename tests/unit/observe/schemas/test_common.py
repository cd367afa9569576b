"""Shared checks of ingested values: timestamps, JSON values, feature maps, error messages."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from observe.schemas.common import (
    MAX_JSON_DEPTH,
    MAX_STRING_LENGTH,
    Features,
    check_features,
    check_json_value,
    check_text,
    describe_error,
    parse_timestamp,
    simplify_errors,
)

UTC = dt.UTC


def nested_list(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, dt.datetime(1970, 1, 1, tzinfo=UTC)),
        (1.5, dt.datetime(1970, 1, 1, 0, 0, 1, 500_000, tzinfo=UTC)),
        (1_794_830_400, dt.datetime(2026, 11, 16, 12, tzinfo=UTC)),
        # numbers above 2e10 are milliseconds
        (1_794_830_400_250, dt.datetime(2026, 11, 16, 12, 0, 0, 250_000, tzinfo=UTC)),
        ("2026-11-16T12:00:00Z", dt.datetime(2026, 11, 16, 12, tzinfo=UTC)),
        ("2026-11-16T12:00:00.123456+00:00", dt.datetime(2026, 11, 16, 12, 0, 0, 123456, UTC)),
        ("2026-11-16T14:30:00+02:30", dt.datetime(2026, 11, 16, 12, tzinfo=UTC)),
        ("2026-11-16T07:00:00-05:00", dt.datetime(2026, 11, 16, 12, tzinfo=UTC)),
        ("2026-11-16T12:00:00", dt.datetime(2026, 11, 16, 12, tzinfo=UTC)),
        ("2026-11-16 12:00:00", dt.datetime(2026, 11, 16, 12, tzinfo=UTC)),
        (dt.datetime(2026, 11, 16, 12), dt.datetime(2026, 11, 16, 12, tzinfo=UTC)),
        ("1970-01-01T01:00:00+01:00", dt.datetime(1970, 1, 1, tzinfo=UTC)),
        ("9999-12-31T23:59:59+01:00", dt.datetime(9999, 12, 31, 22, 59, 59, tzinfo=UTC)),
    ],
)
def test_parse_timestamp_reads_epoch_seconds_and_rfc3339_as_utc(value: Any, expected: Any) -> None:
    parsed = parse_timestamp(value)

    assert parsed == expected
    assert parsed.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (-1, "timestamp is before 1970-01-01"),
        ("1969-12-31T23:59:59Z", "timestamp is before 1970-01-01"),
        ("1970-01-01T00:30:00+01:00", "timestamp is before 1970-01-01"),
        ("0001-01-01T00:30:00+01:00", "timestamp is before 1970-01-01"),
        ("9999-12-31T23:00:00-05:00", "timestamp is after 9999-12-31 in UTC"),
        ("yesterday", "valid datetime"),
        ("2026-13-01T00:00:00Z", "valid datetime"),
        (math.nan, "valid datetime"),
        (math.inf, "valid datetime"),
        (None, "valid datetime"),
    ],
)
def test_parse_timestamp_refuses_with_a_readable_message(value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        parse_timestamp(value)

    assert not isinstance(raised.value, ValidationError)


def test_check_text_refuses_nul() -> None:
    assert check_text("fine") == "fine"
    with pytest.raises(ValueError, match="NUL"):
        check_text("a\x00b")


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        -(2**63),
        2**63 - 1,
        1.5,
        "x" * MAX_STRING_LENGTH,
        {"a": [1, "b", None, {"c": 2.0}]},
        nested_list(MAX_JSON_DEPTH),
    ],
)
def test_check_json_value_accepts_what_json_columns_store(value: Any) -> None:
    assert check_json_value(value) is value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (2**63, "64 bits"),
        (-(2**63) - 1, "64 bits"),
        ({"a": [1, 2**64]}, "64 bits"),
        (math.nan, "NaN and Infinity"),
        ([-math.inf], "NaN and Infinity"),
        ("a\x00", "NUL"),
        ({"key\x00": 1}, "NUL"),
        ("x" * (MAX_STRING_LENGTH + 1), f"longer than {MAX_STRING_LENGTH}"),
        ({"x" * (MAX_STRING_LENGTH + 1): 1}, f"longer than {MAX_STRING_LENGTH}"),
        (nested_list(MAX_JSON_DEPTH + 1), f"deeper than {MAX_JSON_DEPTH}"),
        ({1, 2}, "unsupported JSON value of type set"),
        (b"bytes", "unsupported JSON value of type bytes"),
    ],
)
def test_check_json_value_refuses_what_json_columns_cannot_store(value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_json_value(value)


def test_check_features_accepts_the_full_int64_range() -> None:
    features = {"low": -(2**63), "high": 2**63 - 1, "s": "x" * MAX_STRING_LENGTH, "n": None}

    assert check_features(features) is features


@pytest.mark.parametrize(
    ("features", "message"),
    [
        ({"big": 2**63}, "feature 'big': integer does not fit in 64 bits"),
        ({"small": -(2**63) - 1}, "feature 'small': integer does not fit in 64 bits"),
        ({"s": "a\x00"}, "feature 's': string contains a NUL character"),
        ({"a\x00": 1}, "feature name 'a\\\\x00' contains a NUL character"),
        ({"s": "x" * (MAX_STRING_LENGTH + 1)}, "feature 's': string longer than 65536"),
    ],
)
def test_check_features_names_the_feature(features: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_features(features)


class _WithFeatures(BaseModel):
    features: Features


def _errors(data: Any) -> list[Any]:
    with pytest.raises(ValidationError) as raised:
        _WithFeatures.model_validate(data)
    return raised.value.errors()


def test_simplify_errors_collapses_the_branches_of_a_feature_value_into_one() -> None:
    raw = _errors({"features": {"ok": 1, "bad": [1]}})
    assert len(raw) > 1  # one per union member

    simplified = simplify_errors(raw)

    assert simplified == [
        {
            "loc": ("features", "bad"),
            "type": "value_error",
            "msg": "must be a number, string, boolean or null",
        }
    ]


def test_simplify_errors_keeps_one_error_per_bad_feature_in_order() -> None:
    simplified = simplify_errors(_errors({"features": {"a": {}, "b": 2, "c": []}}))

    assert [detail["loc"] for detail in simplified] == [("features", "a"), ("features", "c")]


def test_simplify_errors_names_non_finite_feature_values() -> None:
    class Strict(BaseModel):
        model_config = {"allow_inf_nan": False}
        features: Features

    with pytest.raises(ValidationError) as raised:
        Strict.model_validate({"features": {"x": math.inf}})

    [detail] = simplify_errors(raised.value.errors())
    assert detail["loc"] == ("features", "x")
    assert detail["msg"] == "NaN and Infinity are not valid JSON numbers"


def test_simplify_errors_leaves_other_errors_alone() -> None:
    errors = [
        {"loc": ("latency_ms",), "type": "missing", "msg": "Field required"},
        {"loc": ("tags", "host"), "type": "string_type", "msg": "Input should be a valid string"},
    ]

    assert simplify_errors(errors) == errors


@pytest.mark.parametrize(
    ("detail", "expected"),
    [
        ({"loc": ("colour",), "type": "extra_forbidden", "msg": "Extra inputs"}, "unknown field"),
        ({"loc": ("model",), "type": "missing", "msg": "Field required"}, "field required"),
        (
            {
                "loc": ("label",),
                "type": "value_error",
                "msg": "Value error, label must not be null",
            },
            "label must not be null",
        ),
        (
            {"loc": ("x",), "type": "assertion_error", "msg": "Assertion failed, x is odd"},
            "x is odd",
        ),
        (
            {
                "loc": ("tags", "host"),
                "type": "string_pattern_mismatch",
                "msg": "String should match pattern '^[^\\x00]*$'",
                "ctx": {"pattern": r"^[^\x00]*$"},
            },
            "string contains a NUL character (\\u0000)",
        ),
        (
            {
                "loc": ("trace_id",),
                "type": "string_pattern_mismatch",
                "msg": "String should match pattern '^[0-9a-fA-F]{32}$'",
                "ctx": {"pattern": "^[0-9a-fA-F]{32}$"},
            },
            "String should match pattern '^[0-9a-fA-F]{32}$'",
        ),
    ],
)
def test_describe_error_gives_a_readable_message(detail: Any, expected: str) -> None:
    path, message = describe_error(detail)

    assert path == ".".join(detail["loc"])
    assert message == expected


def test_describe_error_uses_the_given_location() -> None:
    detail = {"loc": (3, "features", "amount"), "type": "missing", "msg": "Field required"}

    assert describe_error(detail, ("features", "amount")) == ("features.amount", "field required")
    assert describe_error(detail, ()) == (None, "field required")
