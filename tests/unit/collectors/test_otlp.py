"""collectors.otlp: OTLP trace requests (protobuf and JSON) and files decode to span dicts."""

from __future__ import annotations

import gzip
import math
from pathlib import Path
from typing import Any

import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from collectors.files import FileFormatError
from collectors.otlp import (
    OtlpDecodeError,
    decode_traces_json,
    decode_traces_protobuf,
    read_trace_file,
)

OTLP = Path(__file__).parents[2] / "data" / "otlp"
T0_NANO = 1_794_830_400 * 10**9

# The official example's one span, as the decoder must return it.
EXAMPLE_SPAN = {
    "trace_id": "5b8efff798038103d269b633813fc60c",
    "span_id": "eee19b7ec3c1b174",
    "parent_span_id": "eee19b7ec3c1b173",
    "name": "I'm a server span",
    "service_name": "my.service",
    "kind": "server",
    "start_time_unix_nano": 1544712660000000000,
    "end_time_unix_nano": 1544712661000000000,
    "status_code": "unset",
    "status_message": None,
    "attributes": {
        "my.span.attr": "some value",
        "otel.scope.name": "my.library",
        "otel.scope.version": "1.0.0",
    },
    "resource_attributes": {"service.name": "my.service"},
}


def example_as_protobuf() -> bytes:
    """The official example built with opentelemetry-proto's own message classes."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.append(
        KeyValue(key="service.name", value=AnyValue(string_value="my.service"))
    )
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "my.library"
    scope_spans.scope.version = "1.0.0"
    scope_spans.scope.attributes.append(
        KeyValue(key="my.scope.attribute", value=AnyValue(string_value="some scope attribute"))
    )
    scope_spans.spans.append(
        Span(
            trace_id=bytes.fromhex("5B8EFFF798038103D269B633813FC60C"),
            span_id=bytes.fromhex("EEE19B7EC3C1B174"),
            parent_span_id=bytes.fromhex("EEE19B7EC3C1B173"),
            name="I'm a server span",
            start_time_unix_nano=1544712660000000000,
            end_time_unix_nano=1544712661000000000,
            kind=Span.SpanKind.SPAN_KIND_SERVER,
            attributes=[KeyValue(key="my.span.attr", value=AnyValue(string_value="some value"))],
        )
    )
    return request.SerializeToString()


def json_request(*spans: dict[str, Any], resource: Any = None) -> bytes:
    resource_spans: dict[str, Any] = {"scopeSpans": [{"spans": list(spans)}]}
    if resource is not None:
        resource_spans["resource"] = resource
    return orjson.dumps({"resourceSpans": [resource_spans]})


def json_span(**overrides: Any) -> dict[str, Any]:
    base = {
        "traceId": "0af7651916cd43dd8448eb211c80319c",
        "spanId": "b7ad6b7169203331",
        "name": "predict",
        "kind": 2,
        "startTimeUnixNano": str(T0_NANO),
        "endTimeUnixNano": str(T0_NANO + 5_000_000),
    }
    base.update(overrides)
    return base


# --- the official example ------------------------------------------------------------------


def test_the_official_json_example_decodes_to_its_one_span() -> None:
    decoded = decode_traces_json((OTLP / "trace.json").read_bytes())

    assert decoded.spans == [EXAMPLE_SPAN]
    assert decoded.undecodable == []


def test_the_official_example_as_protobuf_decodes_to_the_same_span() -> None:
    decoded = decode_traces_protobuf(example_as_protobuf())

    assert decoded.spans == [EXAMPLE_SPAN]


# --- SDK fixtures ----------------------------------------------------------------------------


def spans_by_id(spans: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {span["span_id"]: span for span in spans}


def test_the_sdk_export_decodes_the_same_from_protobuf_and_from_json_lines() -> None:
    from_protobuf = decode_traces_protobuf((OTLP / "traces.pb").read_bytes())
    from_json = [request.traces for request in read_trace_file(OTLP / "traces.jsonl")]

    json_spans = [span for traces in from_json if traces for span in traces.spans]
    assert len(from_protobuf.spans) == 7
    assert spans_by_id(json_spans) == spans_by_id(from_protobuf.spans)


def test_the_sdk_export_carries_kinds_status_and_typed_attributes() -> None:
    spans = spans_by_id(decode_traces_protobuf((OTLP / "traces.pb").read_bytes()).spans)

    root = spans["0000000000000001"]
    assert root["trace_id"] == "00000000000000000000000000000001"
    assert root["parent_span_id"] is None
    assert (root["kind"], root["status_code"]) == ("server", "ok")
    assert root["attributes"]["model.name"] == "fraud-scorer"
    assert root["attributes"]["batch_size"] == 8
    assert root["resource_attributes"]["host.name"] == "gpu-1"
    assert root["service_name"] == "fraud-scorer"
    assert root["end_time_unix_nano"] - root["start_time_unix_nano"] == 45_000_000
    forward = spans["0000000000000003"]
    assert forward["parent_span_id"] == "0000000000000001"
    assert forward["kind"] == "internal"
    assert forward["attributes"]["input.tokens"] == 512
    assert forward["attributes"]["score"] == 0.25
    assert forward["attributes"]["shapes"] == [8, 512]
    failed_lookup = spans["0000000000000005"]
    assert failed_lookup["kind"] == "client"
    assert failed_lookup["status_code"] == "error"
    assert failed_lookup["status_message"] == "feature store timed out"
    assert failed_lookup["attributes"]["otel.scope.name"] == "observe.fixtures"


# --- attribute values ------------------------------------------------------------------------


def test_every_any_value_kind_decodes_from_protobuf() -> None:
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id = b"\x01" * 16, b"\x02" * 8
    values = {
        "s": AnyValue(string_value="text"),
        "b": AnyValue(bool_value=True),
        "i": AnyValue(int_value=-(2**63)),
        "d": AnyValue(double_value=1.5),
        "nan": AnyValue(double_value=math.nan),
        "inf": AnyValue(double_value=-math.inf),
        "bytes": AnyValue(bytes_value=b"\x00\xff"),
        "empty": AnyValue(),
    }
    values["array"] = AnyValue()
    values["array"].array_value.values.extend([AnyValue(int_value=1), AnyValue(string_value="x")])
    values["kvlist"] = AnyValue()
    values["kvlist"].kvlist_value.values.append(
        KeyValue(key="inner", value=AnyValue(bool_value=False))
    )
    span.attributes.extend(KeyValue(key=key, value=value) for key, value in values.items())

    attributes = decode_traces_protobuf(request.SerializeToString()).spans[0]["attributes"]

    assert attributes == {
        "s": "text",
        "b": True,
        "i": -(2**63),
        "d": 1.5,
        "nan": "NaN",
        "inf": "-Infinity",
        "bytes": "AP8=",
        "empty": None,
        "array": [1, "x"],
        "kvlist": {"inner": False},
    }


def test_json_values_accept_strings_for_64_bit_integers_and_special_doubles() -> None:
    attributes = [
        {"key": "big", "value": {"intValue": "9223372036854775807"}},
        {"key": "small", "value": {"intValue": -3}},
        {"key": "nan", "value": {"doubleValue": "NaN"}},
        {"key": "number", "value": {"doubleValue": 2}},
        {"key": "nested", "value": {"kvlistValue": {"values": [{"key": "a", "value": {}}]}}},
    ]
    decoded = decode_traces_json(json_request(json_span(attributes=attributes)))

    assert decoded.spans[0]["attributes"] == {
        "big": 2**63 - 1,
        "small": -3,
        "nan": "NaN",
        "number": 2.0,
        "nested": {"a": None},
    }


def test_json_ids_are_hex_in_either_case_and_64_bit_times_may_be_numbers() -> None:
    span = json_span(
        traceId="0AF7651916CD43DD8448EB211C80319C",
        parentSpanId="",
        startTimeUnixNano=T0_NANO,
        endTimeUnixNano=T0_NANO + 1,
        kind="SPAN_KIND_CONSUMER",
        status={"code": "STATUS_CODE_ERROR", "message": "boom"},
    )

    decoded = decode_traces_json(json_request(span)).spans[0]

    assert decoded["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert decoded["parent_span_id"] is None
    assert decoded["start_time_unix_nano"] == T0_NANO
    assert decoded["kind"] == "consumer"
    assert (decoded["status_code"], decoded["status_message"]) == ("error", "boom")


def test_json_fields_with_other_names_are_ignored_as_the_specification_requires() -> None:
    span = json_span(trace_id="0af7651916cd43dd8448eb211c80319c", futureField={"x": 1})
    del span["traceId"]

    decoded = decode_traces_json(json_request(span)).spans[0]

    assert decoded["trace_id"] is None  # left for validation to reject


def test_a_missing_service_name_is_unknown_service() -> None:
    assert decode_traces_json(json_request(json_span())).spans[0]["service_name"] == (
        "unknown_service"
    )


def test_a_span_whose_fields_do_not_decode_is_reported_and_the_others_decoded() -> None:
    bad_value = [{"key": "n", "value": {"intValue": "x"}}]
    bad = json_span(spanId="00f067aa0ba902b7", attributes=bad_value)
    late = json_span(spanId="00f067aa0ba902b8", startTimeUnixNano="soon")

    decoded = decode_traces_json(json_request(json_span(), bad, "not an object", late))

    assert [span["span_id"] for span in decoded.spans] == ["b7ad6b7169203331"]
    assert [(u.span_id, u.message) for u in decoded.undecodable] == [
        ("00f067aa0ba902b7", "attributes.n: expected an integer, got 'x'"),
        (None, "a span must be a JSON object"),
        ("00f067aa0ba902b8", "startTimeUnixNano: expected an integer, got 'soon'"),
    ]
    assert decoded.num_spans == 4


def test_an_empty_request_has_no_spans() -> None:
    assert decode_traces_json(b"{}").num_spans == 0
    assert decode_traces_protobuf(b"").num_spans == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "must be a JSON object"),
        (b'{"resourceSpans": {}}', "resourceSpans must be an array"),
        (b'{"resourceSpans": [7]}', "resourceSpans[0] must be a JSON object"),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": 3}]}]}', "spans must be an array"),
        (
            b'{"resourceSpans": [{"resource": {"attributes": 5}}]}',
            "resource.attributes must be an array",
        ),
    ],
)
def test_json_that_is_no_export_request_is_refused(body: bytes, message: str) -> None:
    with pytest.raises(OtlpDecodeError, match=message.replace("[", r"\[").replace("]", r"\]")):
        decode_traces_json(body)


def test_bytes_that_are_no_protobuf_request_are_refused() -> None:
    with pytest.raises(OtlpDecodeError, match="not a protobuf ExportTraceServiceRequest"):
        decode_traces_protobuf((OTLP / "trace.json").read_bytes())


def test_protobuf_ids_pass_through_whatever_their_length_for_validation_to_name() -> None:
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id = b"\x01\x02", b""
    span.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR))

    decoded = decode_traces_protobuf(request.SerializeToString()).spans[0]

    assert (decoded["trace_id"], decoded["span_id"]) == ("0102", "")
    assert decoded["status_code"] == "error"


# --- files -----------------------------------------------------------------------------------


def test_a_file_of_json_lines_yields_one_request_per_line() -> None:
    requests = list(read_trace_file(OTLP / "traces.jsonl"))

    assert [r.line for r in requests] == [1, 2, 3]
    assert [r.traces.num_spans for r in requests if r.traces] == [2, 4, 1]


def test_a_pretty_printed_file_is_one_request() -> None:
    requests = list(read_trace_file(OTLP / "trace.json"))

    assert len(requests) == 1
    assert requests[0].traces is not None
    assert requests[0].traces.spans == [EXAMPLE_SPAN]


def test_bad_lines_are_reported_with_their_number_and_the_rest_read() -> None:
    requests = list(read_trace_file(OTLP / "traces_with_errors.jsonl"))

    assert [(r.line, r.error is None) for r in requests] == [(1, True), (2, False), (3, True)]
    assert "not valid JSON" in (requests[1].error or "")
    assert requests[2].traces is not None
    assert requests[2].traces.num_spans == 2


def test_a_gzipped_file_reads_like_the_plain_one(tmp_path: Path) -> None:
    path = tmp_path / "traces.jsonl.gz"
    path.write_bytes(gzip.compress((OTLP / "traces.jsonl").read_bytes()))

    plain = [r.traces for r in read_trace_file(OTLP / "traces.jsonl")]
    assert [r.traces for r in read_trace_file(path)] == plain


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"\n\n", "is empty"), (b'{\n  "resourceSpans": [\n', "neither OTLP/JSON lines nor")],
)
def test_an_unreadable_file_is_refused_whole(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "spans.json"
    path.write_bytes(content)

    with pytest.raises(FileFormatError, match=message):
        list(read_trace_file(path))


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileFormatError, match="does not exist"):
        list(read_trace_file(tmp_path / "nope.jsonl"))
