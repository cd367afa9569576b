"""observe.pipeline.spans validation: each invalid span is rejected with a reason naming the
field, the valid ones pass, and the model a span names is found by the configured keys."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from collectors.otlp import DecodedTraces, UndecodableSpan
from observe.pipeline.spans import MAX_REPORTED_REJECTIONS, span_model, validate_spans
from tests import factories

KEYS = ("model.name", "model", "gen_ai.request.model")


def validate(*spans: dict[str, Any]) -> Any:
    return validate_spans(DecodedTraces(spans=list(spans)), model_attributes=KEYS)


def test_a_valid_span_becomes_a_span_in_with_times_and_duration() -> None:
    result = validate(factories.span(duration_ms=12.5, attributes={"model.name": "fraud-scorer"}))

    assert result.rejections == []
    (span,) = result.spans
    assert span.start_at == factories.T0
    assert span.end_at == factories.T0 + dt.timedelta(milliseconds=12.5)
    assert span.duration_ms == 12.5
    assert span.model == "fraud-scorer"


def test_a_zero_length_span_is_valid() -> None:
    assert validate(factories.span(duration_ms=0)).spans[0].duration_ms == 0.0


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


INVALID = {
    "short trace id": ({"trace_id": "abc"}, "traceId: trace id must be 32 hex digits"),
    "non-hex trace id": ({"trace_id": "z" * 32}, "traceId: trace id must be 32 hex digits"),
    "zero trace id": ({"trace_id": "0" * 32}, "traceId: trace id of all zeros is invalid"),
    "missing trace id": ({"trace_id": None}, "traceId: Input should be a valid string"),
    "short span id": ({"span_id": "01"}, "spanId: span id must be 16 hex digits"),
    "zero span id": ({"span_id": "0" * 16}, "spanId: span id of all zeros is invalid"),
    "bad parent": ({"parent_span_id": "xyz"}, "parentSpanId: span id must be 16 hex digits"),
    "end before start": (
        {"end_time_unix_nano": factories.unix_nano(factories.T0) - 1},
        "endTimeUnixNano is before startTimeUnixNano",
    ),
    "no start time": (
        {"start_time_unix_nano": 0, "end_time_unix_nano": 5},
        "startTimeUnixNano is missing (0)",
    ),
    "name too long": ({"name": "x" * 501}, "name: String should have at most 500 characters"),
    "name with NUL": ({"name": "a\x00b"}, "name: string contains a NUL character"),
    "service name too long": (
        {"service_name": "s" * 201},
        "resource attribute service.name: String should have at most 200 characters",
    ),
    "attribute with NUL": (
        {"attributes": {"query": "a\x00"}},
        "attributes: attribute 'query': string contains a NUL character",
    ),
    "resource attribute nested too deep": (
        {"resource_attributes": {"deep": nested(33)}},
        "resource.attributes: attribute 'deep': nested deeper than 32 levels",
    ),
}


@pytest.mark.parametrize("case", INVALID, ids=list(INVALID))
def test_an_invalid_span_is_rejected_with_the_field_and_reason(case: str) -> None:
    overrides, reason = INVALID[case]
    bad = factories.span(**{"span_id": "00f067aa0ba902b7", **overrides})

    result = validate(factories.span(), bad)

    assert [span.span_id for span in result.spans] == ["eee19b7ec3c1b174"]
    (rejection,) = result.rejections
    assert reason in rejection.message, rejection.message
    assert rejection.data == bad


def test_the_error_message_counts_rejections_and_names_the_first_few() -> None:
    bad = [
        factories.span(span_id=f"{i + 1:016x}", end_time_unix_nano=1, start_time_unix_nano=2)
        for i in range(MAX_REPORTED_REJECTIONS + 2)
    ]
    decoded = DecodedTraces(
        spans=bad, undecodable=[UndecodableSpan(None, None, "a span must be a JSON object")]
    )

    result = validate_spans(decoded, model_attributes=KEYS)

    message = result.error_message()
    assert message.startswith(f"{MAX_REPORTED_REJECTIONS + 3} span(s) rejected: ")
    assert "a span must be a JSON object" in message
    assert "span 0000000000000001 of trace 5b8efff798038103d269b633813fc60c: " in message
    assert message.endswith("; and 3 more")


def test_a_span_names_its_model_by_the_first_key_in_its_own_then_its_resource_attributes() -> None:
    assert span_model({"model": "a", "model.name": "b"}, {"model.name": "c"}, KEYS) == "b"
    assert span_model({"other": 1}, {"model": "c"}, KEYS) == "c"
    assert span_model({"gen_ai.request.model": "llama"}, None, KEYS) == "llama"
    assert span_model({"model.name": 7, "model": ""}, {"x": "y"}, KEYS) is None
    assert span_model(None, None, KEYS) is None
    assert span_model({"serving.model": "m"}, None, ("serving.model",)) == "m"


@pytest.mark.parametrize(
    ("attributes", "reason"),
    [
        ({"n": 2**63}, "integer does not fit in 64 bits"),
        ({"n": 2**64 - 1}, "integer does not fit in 64 bits"),
        ({"x": float("nan")}, "NaN and Infinity are not valid JSON numbers"),
        ({"s": "x" * 65_537}, "string longer than 65536 characters"),
        ({"k\x00": 1}, "attribute key 'k\\x00' contains NUL"),
        ({"list": ["ok", "a\x00"]}, "string contains a NUL character"),
    ],
)
def test_attributes_a_json_column_cannot_store_are_refused(
    attributes: dict[str, Any], reason: str
) -> None:
    result = validate(factories.span(attributes=attributes))

    assert result.spans == []
    assert reason in result.rejections[0].message, result.rejections[0].message


def test_attributes_that_only_look_suspicious_pass() -> None:
    attributes = {"none": None, "digits": "1234567890123456789012", "escaped": "\\u0000"}

    assert validate(factories.span(attributes=attributes)).spans[0].attributes == attributes
