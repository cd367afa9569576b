"""The ingest contract of DESIGN 3.1: what each record type accepts and how it reports the rest."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import orjson
import pytest
from pydantic import BaseModel, ValidationError

from observe.db.models import EVENT_KINDS
from observe.schemas.common import (
    MAX_JSON_DEPTH,
    MAX_STRING_LENGTH,
    describe_error,
    simplify_errors,
)
from observe.schemas.records import EventIn, InferenceRecordIn, LabelIn, MetricSampleIn
from tests.factories import T0, event, event_in, label, metric, record

NUL = "\x00"
NUL_MESSAGE = "string contains a NUL character (\\u0000)"
NON_FINITE_MESSAGE = "NaN and Infinity are not valid JSON numbers"
INT64_MESSAGE = "integer does not fit in 64 bits"


def errors_of(item_type: type[BaseModel], data: dict[str, Any] | bytes) -> list[tuple[Any, str]]:
    """(field, message) of every error, as the API reports them."""
    validate = (
        item_type.model_validate_json if isinstance(data, bytes) else item_type.model_validate
    )
    with pytest.raises(ValidationError) as raised:
        validate(data)
    return [describe_error(detail) for detail in simplify_errors(raised.value.errors())]


def the_error(item_type: type[BaseModel], data: dict[str, Any] | bytes) -> tuple[Any, str]:
    [error] = errors_of(item_type, data)
    return error


def nested_list(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def without(data: dict[str, Any], name: str) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key != name}


def json_with(data: dict[str, Any], name: str, literal: str) -> bytes:
    """`data` as JSON text with the value of `name` replaced by a raw JSON literal."""
    text = orjson.dumps({**data, name: "@@"})
    return text.replace(b'"@@"', literal.encode())


# --- inference records: valid ---------------------------------------------------------------


def test_record_with_every_optional_field() -> None:
    item = InferenceRecordIn.model_validate(
        record(
            status="error",
            error="CUDA out of memory",
            label=1,
            input_size=512,
            trace_id="4BF92F3577B34DA6A3CE929D0E0E4736",
            prediction={"score": 0.93, "class": "fraud", "top": [1, 2, 3]},
            features={"amount": 12.5, "country": "DE", "card_present": True, "n": 3, "gone": None},
        )
    )

    assert item.model == "fraud-scorer"
    assert item.timestamp == T0
    assert item.status == "error"
    assert item.error == "CUDA out of memory"
    assert item.label == 1
    assert item.input_size == 512.0
    assert item.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"  # stored lower-case
    assert item.prediction == {"score": 0.93, "class": "fraud", "top": [1, 2, 3]}
    assert item.features == {
        "amount": 12.5,
        "country": "DE",
        "card_present": True,
        "n": 3,
        "gone": None,
    }
    assert type(item.features["n"]) is int
    assert type(item.features["card_present"]) is bool
    assert item.tags == {"host": "gpu-1", "region": "eu-west"}


def test_record_with_only_required_fields_gets_defaults() -> None:
    item = InferenceRecordIn.model_validate(
        {
            "model": "m",
            "model_version": "v",
            "timestamp": 0,
            "request_id": "r",
            "latency_ms": 0,
        }
    )

    assert item.status == "ok"
    assert item.latency_ms == 0.0
    assert item.timestamp == dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    assert (item.error, item.features, item.prediction, item.label) == (None, None, None, None)
    assert (item.tags, item.input_size, item.trace_id) == (None, None, None)


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        (T0.timestamp(), T0),
        (int(T0.timestamp()), T0),
        ("2026-11-16T12:00:00Z", T0),
        ("2026-11-16T12:00:00+00:00", T0),
        ("2026-11-16T13:00:00+01:00", T0),
        ("2026-11-16T03:30:00-08:30", T0),
        ("2026-11-16T12:00:00", T0),
        ("2026-11-16T12:00:00.5", T0 + dt.timedelta(milliseconds=500)),
    ],
)
def test_record_timestamp_is_stored_as_utc(timestamp: Any, expected: dt.datetime) -> None:
    item = InferenceRecordIn.model_validate_json(orjson.dumps(record(timestamp=timestamp)))

    assert item.timestamp == expected
    assert item.timestamp.utcoffset() == dt.timedelta(0)


def test_record_numbers_may_be_integers_in_json() -> None:
    data = orjson.dumps(record(latency_ms=12, input_size=512))

    item = InferenceRecordIn.model_validate_json(data)

    assert (item.latency_ms, item.input_size) == (12.0, 512.0)
    assert type(item.latency_ms) is float


def test_record_accepts_64_bit_integers_at_the_limits() -> None:
    item = InferenceRecordIn.model_validate_json(
        orjson.dumps(
            record(features={"low": -(2**63), "high": 2**63 - 1}, prediction=2**63 - 1, label=-1)
        )
    )

    assert item.features == {"low": -(2**63), "high": 2**63 - 1}
    assert item.prediction == 2**63 - 1


def test_record_accepts_strings_and_nesting_at_the_limits() -> None:
    long_text = "x" * MAX_STRING_LENGTH
    item = InferenceRecordIn.model_validate(
        record(
            model="m" * 200,
            tags={"k" * 100: "v" * 200},
            features={"text": long_text},
            prediction=nested_list(MAX_JSON_DEPTH),
            error=long_text,
        )
    )

    assert len(item.model) == 200
    assert item.features == {"text": long_text}


def test_record_is_immutable() -> None:
    item = InferenceRecordIn.model_validate(record())

    with pytest.raises(ValidationError):
        item.latency_ms = 1.0  # type: ignore[misc]


# --- inference records: refused, with the field named -----------------------------------------


@pytest.mark.parametrize(
    "name", ["model", "model_version", "timestamp", "request_id", "latency_ms"]
)
def test_record_missing_a_required_field(name: str) -> None:
    assert errors_of(InferenceRecordIn, without(record(), name)) == [(name, "field required")]


def test_record_reports_every_missing_field() -> None:
    assert errors_of(InferenceRecordIn, {"model": "m"}) == [
        ("model_version", "field required"),
        ("timestamp", "field required"),
        ("request_id", "field required"),
        ("latency_ms", "field required"),
    ]


def test_record_unknown_field() -> None:
    assert the_error(InferenceRecordIn, record(latency=3)) == ("latency", "unknown field")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("model", 3, "Input should be a valid string"),
        ("request_id", ["r"], "Input should be a valid string"),
        ("latency_ms", "fast", "Input should be a valid number"),
        ("latency_ms", "12.5", "Input should be a valid number"),
        ("latency_ms", True, "Input should be a valid number"),
        ("latency_ms", None, "Input should be a valid number"),
        ("timestamp", [2026], "Input should be a valid datetime"),
        ("timestamp", True, "Input should be a valid datetime"),
        ("features", "amount=3", "Input should be a valid dictionary"),
        ("tags", ["host"], "Input should be a valid dictionary"),
        ("input_size", "big", "Input should be a valid number"),
        ("input_size", False, "Input should be a valid number"),
        ("trace_id", 12, "Input should be a valid string"),
    ],
)
def test_record_wrong_type(name: str, value: Any, message: str) -> None:
    assert the_error(InferenceRecordIn, record(**{name: value})) == (name, message)


@pytest.mark.parametrize(
    ("features", "field", "message"),
    [
        ({"a": [1]}, "features.a", "must be a number, string, boolean or null"),
        ({"a": {"b": 1}}, "features.a", "must be a number, string, boolean or null"),
        ({"a": math.nan}, "features.a", NON_FINITE_MESSAGE),
        ({"a": -math.inf}, "features.a", NON_FINITE_MESSAGE),
        ({"a": 2**63}, "features", f"feature 'a': {INT64_MESSAGE}"),
        ({"a": -(2**63) - 1}, "features", f"feature 'a': {INT64_MESSAGE}"),
        ({"a": "x" + NUL}, "features", "feature 'a': string contains a NUL character (\\u0000)"),
        ({"a" + NUL: 1}, "features", "feature name 'a\\x00' contains a NUL character (\\u0000)"),
        (
            {"a": "x" * (MAX_STRING_LENGTH + 1)},
            "features",
            f"feature 'a': string longer than {MAX_STRING_LENGTH} characters",
        ),
    ],
)
def test_record_bad_feature_value(features: dict[str, Any], field: str, message: str) -> None:
    assert the_error(InferenceRecordIn, record(features=features)) == (field, message)


def test_record_empty_feature_name() -> None:
    field, message = the_error(InferenceRecordIn, record(features={"": 1}))

    assert field.startswith("features.")
    assert message == "String should have at least 1 character"


@pytest.mark.parametrize(
    ("name", "literal"),
    [("latency_ms", "NaN"), ("latency_ms", "Infinity"), ("input_size", "-Infinity")],
)
def test_record_non_finite_number_in_json(name: str, literal: str) -> None:
    assert the_error(InferenceRecordIn, json_with(record(), name, literal)) == (
        name,
        "Input should be a finite number",
    )


@pytest.mark.parametrize("name", ["prediction", "label"])
@pytest.mark.parametrize("literal", ["NaN", "Infinity", '{"p": [-Infinity]}'])
def test_record_non_finite_prediction_or_label_in_json(name: str, literal: str) -> None:
    assert the_error(InferenceRecordIn, json_with(record(), name, literal)) == (
        name,
        NON_FINITE_MESSAGE,
    )


def test_record_non_finite_feature_in_json() -> None:
    data = json_with(record(), "features", '{"amount": NaN, "country": "DE"}')

    assert the_error(InferenceRecordIn, data) == ("features.amount", NON_FINITE_MESSAGE)


@pytest.mark.parametrize(
    ("name", "literal", "field", "message"),
    [
        ("features", '{"a": 9223372036854775808}', "features", f"feature 'a': {INT64_MESSAGE}"),
        ("features", '{"a": -9223372036854775809}', "features", f"feature 'a': {INT64_MESSAGE}"),
        ("prediction", "18446744073709551616", "prediction", INT64_MESSAGE),
        ("prediction", '{"scores": [1, 9223372036854775808]}', "prediction", INT64_MESSAGE),
        ("label", "-9223372036854775809", "label", INT64_MESSAGE),
    ],
)
def test_record_integer_beyond_64_bits_in_json(
    name: str, literal: str, field: str, message: str
) -> None:
    assert the_error(InferenceRecordIn, json_with(record(), name, literal)) == (field, message)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"model": "m" + NUL}, "model"),
        ({"model_version": NUL}, "model_version"),
        ({"request_id": "r" + NUL}, "request_id"),
        ({"error": "boom" + NUL}, "error"),
        ({"tags": {"host": "gpu" + NUL}}, "tags.host"),
        ({"prediction": "fraud" + NUL}, "prediction"),
        ({"prediction": {"cl" + NUL + "ass": 1}}, "prediction"),
        ({"label": ["ok", NUL]}, "label"),
    ],
)
def test_record_nul_character(overrides: dict[str, Any], field: str) -> None:
    assert the_error(InferenceRecordIn, record(**overrides)) == (field, NUL_MESSAGE)


def test_record_nul_character_in_tag_key() -> None:
    field, message = the_error(InferenceRecordIn, record(tags={"ho" + NUL + "st": "gpu-1"}))

    assert field.startswith("tags.")
    assert message == NUL_MESSAGE


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"model": "m" * 201}, "model", "String should have at most 200 characters"),
        ({"request_id": "r" * 201}, "request_id", "String should have at most 200 characters"),
        ({"tags": {"host": "h" * 201}}, "tags.host", "String should have at most 200 characters"),
        (
            {"error": "e" * (MAX_STRING_LENGTH + 1)},
            "error",
            f"String should have at most {MAX_STRING_LENGTH} characters",
        ),
        (
            {"prediction": "p" * (MAX_STRING_LENGTH + 1)},
            "prediction",
            f"string longer than {MAX_STRING_LENGTH} characters",
        ),
        (
            {"label": {"k": ["l" * (MAX_STRING_LENGTH + 1)]}},
            "label",
            f"string longer than {MAX_STRING_LENGTH} characters",
        ),
    ],
)
def test_record_over_long_string(overrides: dict[str, Any], field: str, message: str) -> None:
    assert the_error(InferenceRecordIn, record(**overrides)) == (field, message)


def test_record_over_long_tag_key() -> None:
    field, message = the_error(InferenceRecordIn, record(tags={"k" * 101: "v"}))

    assert field.startswith("tags.")
    assert message == "String should have at most 100 characters"


@pytest.mark.parametrize("name", ["prediction", "label"])
def test_record_json_nested_deeper_than_the_limit(name: str) -> None:
    data = orjson.dumps(record(**{name: {"a": nested_list(MAX_JSON_DEPTH)}}))

    assert the_error(InferenceRecordIn, data) == (
        name,
        f"nested deeper than {MAX_JSON_DEPTH} levels",
    )


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"latency_ms": -0.001}, "latency_ms", "Input should be greater than or equal to 0"),
        ({"latency_ms": 2e12}, "latency_ms", "Input should be less than or equal to 1000000000000"),
        ({"input_size": -1}, "input_size", "Input should be greater than or equal to 0"),
        ({"status": "OK"}, "status", "Input should be 'ok' or 'error'"),
        ({"status": "failed"}, "status", "Input should be 'ok' or 'error'"),
        ({"model": ""}, "model", "String should have at least 1 character"),
        ({"model_version": ""}, "model_version", "String should have at least 1 character"),
        ({"request_id": ""}, "request_id", "String should have at least 1 character"),
        ({"tags": {"host": ""}}, "tags.host", "String should have at least 1 character"),
        ({"tags": {"host": 1}}, "tags.host", "Input should be a valid string"),
    ],
)
def test_record_value_out_of_range(overrides: dict[str, Any], field: str, message: str) -> None:
    assert the_error(InferenceRecordIn, record(**overrides)) == (field, message)


@pytest.mark.parametrize(
    ("trace_id", "message"),
    [
        ("0" * 32, "trace_id of all zeros is not a valid trace id"),
        ("a" * 31, "String should match pattern '^[0-9a-fA-F]{32}$'"),
        ("a" * 33, "String should match pattern '^[0-9a-fA-F]{32}$'"),
        ("g" * 32, "String should match pattern '^[0-9a-fA-F]{32}$'"),
        ("4bf92f35-77b3-4da6-a3ce-929d0e0e4736", "String should match pattern '^[0-9a-fA-F]{32}$'"),
    ],
)
def test_record_bad_trace_id(trace_id: str, message: str) -> None:
    assert the_error(InferenceRecordIn, record(trace_id=trace_id)) == ("trace_id", message)


@pytest.mark.parametrize(
    ("timestamp", "message"),
    [
        (-1, "timestamp is before 1970-01-01"),
        ("1969-12-31T23:59:59.999Z", "timestamp is before 1970-01-01"),
        ("1970-01-01T00:59:59+01:00", "timestamp is before 1970-01-01"),
        ("9999-12-31T22:00:00-05:00", "timestamp is after 9999-12-31 in UTC"),
    ],
)
def test_record_timestamp_out_of_range(timestamp: Any, message: str) -> None:
    assert the_error(InferenceRecordIn, record(timestamp=timestamp)) == ("timestamp", message)


@pytest.mark.parametrize("timestamp", ["last tuesday", "2026-11-16T25:00:00Z", "16/11/2026", ""])
def test_record_unparseable_timestamp(timestamp: str) -> None:
    field, message = the_error(InferenceRecordIn, record(timestamp=timestamp))

    assert field == "timestamp"
    assert message.startswith("Input should be a valid datetime")


# --- labels ---------------------------------------------------------------------------------


def test_label_is_any_json_value_with_an_optional_timestamp() -> None:
    item = LabelIn.model_validate(label(label={"class": "fraud", "score": 1.0}, timestamp=5))

    assert item.label == {"class": "fraud", "score": 1.0}
    assert item.timestamp == dt.datetime(1970, 1, 1, 0, 0, 5, tzinfo=dt.UTC)
    assert LabelIn.model_validate(label(label=False)).timestamp is None


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (label(label=None), ("label", "label must not be null")),
        (without(label(), "label"), ("label", "field required")),
        (without(label(), "request_id"), ("request_id", "field required")),
        (label(model=""), ("model", "String should have at least 1 character")),
        (label(label=2**64), ("label", INT64_MESSAGE)),
        (label(label=math.nan), ("label", NON_FINITE_MESSAGE)),
        (label(label="a" + NUL), ("label", NUL_MESSAGE)),
        (label(timestamp="1960-01-01T00:00:00Z"), ("timestamp", "timestamp is before 1970-01-01")),
        (label(prediction=1), ("prediction", "unknown field")),
    ],
)
def test_label_refused(data: dict[str, Any], error: tuple[str, str]) -> None:
    assert the_error(LabelIn, data) == error


# --- events ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", EVENT_KINDS)
def test_event_every_kind(kind: str) -> None:
    assert EventIn.model_validate(event(kind=kind)).kind == kind


def test_event_kinds_are_the_contract() -> None:
    assert set(EVENT_KINDS) == {
        "deploy",
        "rollback",
        "canary",
        "config",
        "scale",
        "incident",
        "other",
    }


def test_event_with_only_required_fields() -> None:
    item = EventIn.model_validate({"timestamp": 0, "model": "m", "kind": "incident"})

    assert (item.model_version, item.traffic_pct, item.description, item.tags) == (
        None,
        None,
        None,
        None,
    )


@pytest.mark.parametrize("traffic_pct", [0, 0.5, 100])
def test_event_traffic_pct_in_range(traffic_pct: float) -> None:
    assert EventIn.model_validate(event(traffic_pct=traffic_pct)).traffic_pct == traffic_pct


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        (
            {"kind": "launch"},
            (
                "kind",
                "Input should be 'deploy', 'rollback', 'canary', 'config', 'scale', "
                "'incident' or 'other'",
            ),
        ),
        ({"traffic_pct": -0.1}, ("traffic_pct", "Input should be greater than or equal to 0")),
        ({"traffic_pct": 100.1}, ("traffic_pct", "Input should be less than or equal to 100")),
        ({"traffic_pct": math.nan}, ("traffic_pct", "Input should be a finite number")),
        ({"traffic_pct": True}, ("traffic_pct", "Input should be a valid number")),
        ({"description": "d" + NUL}, ("description", NUL_MESSAGE)),
        ({"severity": "high"}, ("severity", "unknown field")),
    ],
)
def test_event_refused(overrides: dict[str, Any], error: tuple[str, str]) -> None:
    assert the_error(EventIn, event(**overrides)) == error


@pytest.mark.parametrize("name", ["timestamp", "model", "kind"])
def test_event_missing_a_required_field(name: str) -> None:
    assert the_error(EventIn, without(event(), name)) == (name, "field required")


def test_event_dedupe_key_is_the_same_for_the_same_event() -> None:
    key = event_in().dedupe_key()

    assert event_in(timestamp=T0.timestamp()).dedupe_key() == key
    assert event_in(timestamp="2026-11-16T13:00:00+01:00").dedupe_key() == key
    assert event_in(description="roll out v3").dedupe_key() != key
    assert event_in(timestamp=T0.timestamp() + 1).dedupe_key() != key
    assert len(key) == 64


# --- metric samples -------------------------------------------------------------------------


def test_metric_sample() -> None:
    item = MetricSampleIn.model_validate(metric(tags={"pod": "p-1"}, value=0))

    assert (item.host, item.resource, item.name, item.value) == (
        "gpu-1",
        "gpu0",
        "gpu_utilization_pct",
        0,
    )
    assert item.timestamp == T0
    assert item.tags == {"pod": "p-1"}


@pytest.mark.parametrize("name", ["timestamp", "host", "resource", "name", "value"])
def test_metric_missing_a_required_field(name: str) -> None:
    assert the_error(MetricSampleIn, without(metric(), name)) == (name, "field required")


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"value": math.nan}, ("value", "Input should be a finite number")),
        ({"value": math.inf}, ("value", "Input should be a finite number")),
        ({"value": "87%"}, ("value", "Input should be a valid number")),
        ({"value": "87"}, ("value", "Input should be a valid number")),
        ({"value": True}, ("value", "Input should be a valid number")),
        ({"host": ""}, ("host", "String should have at least 1 character")),
        ({"name": "gpu" + NUL}, ("name", NUL_MESSAGE)),
        ({"timestamp": -5}, ("timestamp", "timestamp is before 1970-01-01")),
        ({"unit": "pct"}, ("unit", "unknown field")),
    ],
)
def test_metric_refused(overrides: dict[str, Any], error: tuple[str, str]) -> None:
    assert the_error(MetricSampleIn, metric(**overrides)) == error


def test_metric_non_finite_value_in_json() -> None:
    assert the_error(MetricSampleIn, json_with(metric(), "value", "NaN")) == (
        "value",
        "Input should be a finite number",
    )
