"""Decode OTLP trace export requests (protobuf or JSON) into span dicts in the contract's shape.

Both encodings of `ExportTraceServiceRequest` (opentelemetry-proto,
collector/trace/v1/trace_service.proto) decode to the same flat span dicts::

    {"trace_id": "5b8e...", "span_id": "eee1...", "parent_span_id": None, "name": "predict",
     "service_name": "fraud-scorer", "kind": "server", "start_time_unix_nano": 1544712660000000000,
     "end_time_unix_nano": 1544712661000000000, "status_code": "unset", "status_message": None,
     "attributes": {...}, "resource_attributes": {...}}

JSON follows the OTLP specification's deviations from the proto3 JSON mapping: trace and span
ids are case-insensitive hex strings (not base64), keys are lowerCamelCase (fields with other
names are ignored, as the specification requires), enums are integers (their names are accepted
too), and 64-bit integers may be strings or numbers.

Attribute values become JSON values: strings, booleans, integers, doubles (NaN and the
infinities as the strings "NaN", "Infinity" and "-Infinity", their proto3 JSON form), arrays,
objects (kvlist) and base64 strings (bytes). The instrumentation scope's name and version are
added to each span's attributes as `otel.scope.name` and `otel.scope.version`, the convention
of the OpenTelemetry-to-Jaeger and Zipkin translations. `service.name` defaults to
`unknown_service`, as in the OpenTelemetry SDKs.

Decoding checks shape only: ids are passed on as hex text whatever their length, and the
pipeline validates each span. A request that cannot be decoded at all raises `OtlpDecodeError`;
a span whose fields cannot be decoded (an attribute value that is no AnyValue, a timestamp that
is no integer) is reported as an `UndecodableSpan` while the others are decoded.
"""

from __future__ import annotations

import base64
import gzip
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from collectors.files import UTF8_BOM, FileFormatError

SPAN_KINDS = ("unspecified", "internal", "server", "client", "producer", "consumer")
STATUS_CODES = ("unset", "ok", "error")
UNKNOWN_SERVICE = "unknown_service"
SCOPE_NAME_KEY = "otel.scope.name"
SCOPE_VERSION_KEY = "otel.scope.version"
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
UINT64_MAX = 2**64 - 1
_KIND_NAMES = {f"SPAN_KIND_{kind.upper()}": kind for kind in SPAN_KINDS}
_STATUS_NAMES = {f"STATUS_CODE_{code.upper()}": code for code in STATUS_CODES}


class OtlpDecodeError(ValueError):
    """The request is not a decodable ExportTraceServiceRequest (HTTP 400)."""


@dataclass(frozen=True)
class UndecodableSpan:
    """A span of a decodable request whose fields could not be decoded."""

    trace_id: str | None
    span_id: str | None
    message: str


@dataclass
class DecodedTraces:
    """The spans of one or more export requests, in request order."""

    spans: list[dict[str, Any]] = field(default_factory=list)
    undecodable: list[UndecodableSpan] = field(default_factory=list)

    @property
    def num_spans(self) -> int:
        return len(self.spans) + len(self.undecodable)


# --- protobuf ----------------------------------------------------------------------------------


def decode_traces_protobuf(body: bytes) -> DecodedTraces:
    """Decode a binary protobuf `ExportTraceServiceRequest`.

    Raises:
        OtlpDecodeError: the bytes are not such a message.
    """
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError as error:
        raise OtlpDecodeError(
            f"body is not a protobuf ExportTraceServiceRequest: {error}"
        ) from None
    decoded = DecodedTraces()
    for resource_spans in request.resource_spans:
        resource = _pb_attributes(resource_spans.resource.attributes)
        service = _service_name(resource)
        for scope_spans in resource_spans.scope_spans:
            scope = _scope_attributes(scope_spans.scope.name, scope_spans.scope.version)
            for span in scope_spans.spans:
                decoded.spans.append(_pb_span(span, service, resource, scope))
    return decoded


def _pb_span(
    span: Any, service: str, resource: dict[str, Any], scope: dict[str, Any]
) -> dict[str, Any]:
    kind = span.kind
    code = span.status.code
    return {
        "trace_id": span.trace_id.hex(),
        "span_id": span.span_id.hex(),
        "parent_span_id": _parent(span.parent_span_id.hex()),
        "name": span.name,
        "service_name": service,
        "kind": SPAN_KINDS[kind] if 0 <= kind < len(SPAN_KINDS) else SPAN_KINDS[0],
        "start_time_unix_nano": span.start_time_unix_nano,
        "end_time_unix_nano": span.end_time_unix_nano,
        "status_code": STATUS_CODES[code] if 0 <= code < len(STATUS_CODES) else STATUS_CODES[0],
        "status_message": span.status.message or None,
        "attributes": _with_scope(_pb_attributes(span.attributes), scope),
        "resource_attributes": resource or None,
    }


def _pb_attributes(key_values: Any) -> dict[str, Any]:
    return {kv.key: _pb_value(kv.value) for kv in key_values}


def _pb_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "double_value":
        return _double(value.double_value)
    if kind == "array_value":
        return [_pb_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return _pb_attributes(value.kvlist_value.values)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, kind)


# --- JSON --------------------------------------------------------------------------------------


def decode_traces_json(body: bytes | dict[str, Any]) -> DecodedTraces:
    """Decode an OTLP/JSON `ExportTraceServiceRequest` (bytes, or an already parsed object).

    Raises:
        OtlpDecodeError: not JSON, or not shaped like an export request.
    """
    if isinstance(body, dict):
        request = body
    else:
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise OtlpDecodeError(f"not valid JSON: {error}") from None
    if not isinstance(request, dict):
        raise OtlpDecodeError("an export request must be a JSON object (ExportTraceServiceRequest)")
    decoded = DecodedTraces()
    for number, resource_spans in enumerate(_list(request, "resourceSpans", "request")):
        where = f"resourceSpans[{number}]"
        _require_object(resource_spans, where)
        resource = _json_resource(resource_spans.get("resource"), where)
        service = _service_name(resource)
        for scope_number, scope_spans in enumerate(_list(resource_spans, "scopeSpans", where)):
            scope_where = f"{where}.scopeSpans[{scope_number}]"
            _require_object(scope_spans, scope_where)
            scope = _json_scope(scope_spans.get("scope"), scope_where)
            for span in _list(scope_spans, "spans", scope_where):
                _decode_json_span(decoded, span, service, resource, scope)
    return decoded


def _decode_json_span(
    decoded: DecodedTraces,
    span: Any,
    service: str,
    resource: dict[str, Any],
    scope: dict[str, Any],
) -> None:
    if not isinstance(span, dict):
        decoded.undecodable.append(UndecodableSpan(None, None, "a span must be a JSON object"))
        return
    try:
        decoded.spans.append(_json_span(span, service, resource, scope))
    except ValueError as error:
        trace_id, span_id = span.get("traceId"), span.get("spanId")
        decoded.undecodable.append(
            UndecodableSpan(
                trace_id if isinstance(trace_id, str) else None,
                span_id if isinstance(span_id, str) else None,
                str(error),
            )
        )


def _json_span(
    span: dict[str, Any], service: str, resource: dict[str, Any], scope: dict[str, Any]
) -> dict[str, Any]:
    status = span.get("status") or {}
    if not isinstance(status, dict):
        raise ValueError("status must be an object")
    message = status.get("message")
    return {
        "trace_id": _json_id(span.get("traceId")),
        "span_id": _json_id(span.get("spanId")),
        "parent_span_id": _parent(_json_id(span.get("parentSpanId"))),
        "name": span.get("name", ""),
        "service_name": service,
        "kind": _enum(span.get("kind"), SPAN_KINDS, _KIND_NAMES, "kind"),
        "start_time_unix_nano": _uint64(span.get("startTimeUnixNano"), "startTimeUnixNano"),
        "end_time_unix_nano": _uint64(span.get("endTimeUnixNano"), "endTimeUnixNano"),
        "status_code": _enum(status.get("code"), STATUS_CODES, _STATUS_NAMES, "status.code"),
        "status_message": message or None,
        "attributes": _with_scope(_json_attributes(span.get("attributes"), "attributes"), scope),
        "resource_attributes": resource or None,
    }


def _json_resource(resource: Any, where: str) -> dict[str, Any]:
    if resource is None:
        return {}
    _require_object(resource, f"{where}.resource")
    try:
        return _json_attributes(resource.get("attributes"), "resource.attributes")
    except ValueError as error:
        raise OtlpDecodeError(f"{where}: {error}") from None


def _json_scope(scope: Any, where: str) -> dict[str, Any]:
    if scope is None:
        return {}
    _require_object(scope, f"{where}.scope")
    name, version = scope.get("name"), scope.get("version")
    return _scope_attributes(
        name if isinstance(name, str) else "", version if isinstance(version, str) else ""
    )


def _list(parent: dict[str, Any], key: str, where: str) -> list[Any]:
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise OtlpDecodeError(f"{where}: {key} must be an array")
    return value


def _require_object(value: Any, where: str) -> None:
    if not isinstance(value, dict):
        raise OtlpDecodeError(f"{where} must be a JSON object")


def _json_id(value: Any) -> Any:
    """Hex ids are case-insensitive; anything else is passed on for validation to name."""
    return value.lower() if isinstance(value, str) else value


def _json_attributes(key_values: Any, where: str) -> dict[str, Any]:
    if key_values is None:
        return {}
    if not isinstance(key_values, list):
        raise ValueError(f"{where} must be an array of key-value objects")
    attributes = {}
    for item in key_values:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise ValueError(f"{where}: each item must be an object with a string key")
        attributes[item["key"]] = _json_value(item.get("value"), f"{where}.{item['key']}")
    return attributes


def _json_value(value: Any, where: str) -> Any:
    """An AnyValue object as a JSON value."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError(f"{where}: an attribute value must be an AnyValue object")
    if "stringValue" in value:
        return _typed(value["stringValue"], str, where)
    if "boolValue" in value:
        return _typed(value["boolValue"], bool, where)
    if "intValue" in value:
        return _int64(value["intValue"], where)
    if "doubleValue" in value:
        return _json_double(value["doubleValue"], where)
    if "arrayValue" in value:
        items = _object(value["arrayValue"], where).get("values") or []
        return [_json_value(item, where) for item in _typed(items, list, where)]
    if "kvlistValue" in value:
        return _json_attributes(_object(value["kvlistValue"], where).get("values"), where)
    if "bytesValue" in value:
        return _bytes_text(value["bytesValue"], where)
    return None  # an empty AnyValue, or one of a kind added after this decoder was written


def _typed(value: Any, kind: type, where: str) -> Any:
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ValueError(f"{where}: expected a {kind.__name__}, got {type(value).__name__}")
    return value


def _object(value: Any, where: str) -> dict[str, Any]:
    return _typed(value, dict, where)


def _int64(value: Any, where: str) -> int:
    number = _integer(value, where)
    if not INT64_MIN <= number <= INT64_MAX:
        raise ValueError(f"{where}: {number} does not fit in 64 bits")
    return number


def _uint64(value: Any, name: str) -> int:
    if value is None:
        return 0
    number = _integer(value, name)
    if not 0 <= number <= UINT64_MAX:
        raise ValueError(f"{name}: {number} is not an unsigned 64-bit integer")
    return number


def _integer(value: Any, where: str) -> int:
    """An integer given as a JSON number or a decimal string (the proto3 JSON form of 64-bit
    integers)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise ValueError(f"{where}: expected an integer, got {value!r}")


def _json_double(value: Any, where: str) -> float | str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _double(float(value))
    if isinstance(value, str):
        try:
            return _double(float(value))
        except ValueError:
            pass
    raise ValueError(f"{where}: expected a number, got {value!r}")


def _bytes_text(value: Any, where: str) -> str:
    text = _typed(value, str, where)
    try:
        base64.b64decode(text, validate=True)
    except ValueError:
        raise ValueError(f"{where}: bytesValue must be base64") from None
    return str(text)


def _enum(value: Any, names: tuple[str, ...], by_name: dict[str, str], where: str) -> str:
    if value is None:
        return names[0]
    if isinstance(value, int) and not isinstance(value, bool):
        return names[value] if 0 <= value < len(names) else names[0]
    if isinstance(value, str) and value in by_name:
        return by_name[value]
    raise ValueError(f"{where}: {value!r} is not a valid value")


# --- shared ------------------------------------------------------------------------------------


def _double(value: float) -> float | str:
    """JSON has no NaN or infinities: those become their proto3 JSON strings."""
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _parent(hex_id: Any) -> Any:
    """No parent: an empty id (the OTLP encoding of a root span) or one of all zeros."""
    if hex_id == "" or (isinstance(hex_id, str) and hex_id.strip("0") == "" and hex_id):
        return None
    return hex_id


def _service_name(resource: dict[str, Any]) -> str:
    name = resource.get("service.name")
    return name if isinstance(name, str) and name else UNKNOWN_SERVICE


def _scope_attributes(name: str, version: str) -> dict[str, Any]:
    scope = {}
    if name:
        scope[SCOPE_NAME_KEY] = name
    if version:
        scope[SCOPE_VERSION_KEY] = version
    return scope


def _with_scope(attributes: dict[str, Any], scope: dict[str, Any]) -> dict[str, Any] | None:
    for key, value in scope.items():
        attributes.setdefault(key, value)
    return attributes or None


# --- files -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileRequest:
    """One export request of a file: its line (1 for a whole-file request) and its spans, or
    why it could not be decoded."""

    line: int
    traces: DecodedTraces | None
    error: str | None = None
    raw: str | None = None


def read_trace_file(path: Path) -> Iterator[FileRequest]:
    """The export requests of an OTLP/JSON file (gzipped when its name ends in .gz).

    Two layouts are read: one request per line (what the OpenTelemetry Collector's file
    exporter writes), where a bad line is reported and the others are read; and one request
    per file, possibly pretty-printed (such as the OTLP JSON examples).

    Raises:
        FileFormatError: the file is missing, or is neither layout.
    """
    if not path.is_file():
        raise FileFormatError(f"{path} does not exist or is not a file")
    with _open(path) as handle:
        lines = iter(handle)
        first_number, first = _first_content_line(lines)
        if first is None:
            raise FileFormatError(f"{path.name} is empty")
        if _is_json_object(first):
            yield _line_request(first_number, first)
            for number, line in enumerate(lines, start=first_number + 1):
                if line.strip():
                    yield _line_request(number, line)
            return
        content = first + b"".join(lines)
    yield _whole_file_request(path, content)


def _open(path: Path) -> Any:
    return gzip.open(path, "rb") if path.suffix.lower() == ".gz" else path.open("rb")


def _first_content_line(lines: Iterator[bytes]) -> tuple[int, bytes | None]:
    for number, line in enumerate(lines, start=1):
        if number == 1:
            line = line.removeprefix(UTF8_BOM)
        if line.strip():
            return number, line
    return 0, None


def _is_json_object(line: bytes) -> bool:
    try:
        return isinstance(orjson.loads(line), dict)
    except orjson.JSONDecodeError:
        return False


def _line_request(number: int, line: bytes) -> FileRequest:
    try:
        return FileRequest(number, decode_traces_json(line))
    except OtlpDecodeError as error:
        return FileRequest(number, None, str(error), line[:2000].decode("utf-8", "replace"))


def _whole_file_request(path: Path, content: bytes) -> FileRequest:
    try:
        return FileRequest(1, decode_traces_json(content))
    except OtlpDecodeError as error:
        raise FileFormatError(
            f"{path.name} is neither OTLP/JSON lines nor one OTLP/JSON request: {error}"
        ) from None
