"""KServe and Seldon payload-logger CloudEvents: decoding, and joining the two halves of one
inference into inference records.

The payload logger of a KServe InferenceService (and Seldon Core's executor) sends one
CloudEvent with the request and one with the response of every inference, with the same
CloudEvents ``id`` and ``source``:

- types ``org.kubeflow.serving.inference.request`` / ``...response`` (KServe) and
  ``io.seldon.serving.inference.request`` / ``...response`` (Seldon);
- extension attributes ``inferenceservicename``, ``namespace``, ``component``, ``endpoint``
  (KServe, pkg/logger/worker.go) and ``modelid``, ``requestid``, ``protocol`` (Seldon);
- binary mode (``ce-*`` headers, the payload as body; what both loggers send) or structured mode
  (``application/cloudevents+json``, also batches as ``application/cloudevents-batch+json``).

Payloads understood (the request gives the features, the response the prediction):

- V1: ``{"instances": [...]}`` or ``{"inputs": [...]}`` (rows) or ``{"inputs": {name: [...]}}``
  (columns) / ``{"predictions": [...]}`` or ``{"outputs": ...}`` alike;
- V2, the Open Inference Protocol: ``{"inputs": [{"name", "shape", "datatype", "data"}]}`` /
  ``{"model_name", "model_version", "outputs": [...]}``; the first dimension is the batch;
- Seldon: ``{"data": {"names": [...], "ndarray": [...]}}`` or ``{"data": {"tensor": ...}}``.

Each instance of a batch becomes one record. Feature names: a V1 object instance keeps its
keys (nested keys dotted: ``a.b``; list items indexed: ``a[0]``); a list instance is named by
position (``0``, ``1``, ...) or by Seldon's ``names``; a V2 tensor by its name, with the index
of each element of a row when a row has several (``input-0[3]``). An instance with more than
`max_features` values (an image, a long token list) keeps no features, only its `input_size`.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote

import orjson

KSERVE_REQUEST = "org.kubeflow.serving.inference.request"
KSERVE_RESPONSE = "org.kubeflow.serving.inference.response"
SELDON_REQUEST = "io.seldon.serving.inference.request"
SELDON_RESPONSE = "io.seldon.serving.inference.response"
EVENT_KINDS: dict[str, Literal["request", "response"]] = {
    KSERVE_REQUEST: "request",
    SELDON_REQUEST: "request",
    KSERVE_RESPONSE: "response",
    SELDON_RESPONSE: "response",
}
SPEC_VERSIONS = frozenset({"1.0", "0.3"})
STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
#: Context attributes; every other ``ce-*`` header or top-level member is an extension.
CONTEXT_ATTRIBUTES = frozenset(
    {"id", "source", "type", "specversion", "time", "subject", "dataschema", "datacontenttype"}
)
#: Extension attributes kept as tags of the records.
TAG_ATTRIBUTES = ("namespace", "component", "endpoint", "modelid")
MODEL_ATTRIBUTE = "inferenceservicename"
UNKNOWN_VERSION = "unknown"
MAX_EVENT_ID_LENGTH = 180  # leaves room for the "#<index>" of a batch within 200 characters
MAX_TAG_LENGTH = 200
MAX_STRING_LENGTH = 65_536
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
DEFAULT_MAX_FEATURES = 1_000


class KServePayloadError(ValueError):
    """An event or payload observe cannot use; `status` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class CloudEvent:
    """One CloudEvent: its context attributes, extensions and decoded JSON data."""

    id: str
    source: str
    type: str
    time: dt.datetime | None
    extensions: dict[str, str]
    data: Any


@dataclass(frozen=True)
class Row:
    """One instance of a request: its features (None when too many) and its element count."""

    features: dict[str, Any] | None
    input_size: int


@dataclass(frozen=True)
class InferenceHalf:
    """The decoded request or response of one inference, as persisted until its partner comes.

    `overrides` are the sink's ``model``/``model_version`` query parameters at arrival.
    """

    kind: Literal["request", "response"]
    event_id: str
    source: str
    time: dt.datetime | None
    extensions: dict[str, str]
    rows: list[Row] = field(default_factory=list)
    predictions: list[Any] = field(default_factory=list)
    model_name: str | None = None
    model_version: str | None = None
    error: str | None = None
    overrides: dict[str, str] = field(default_factory=dict)

    @property
    def pair_key(self) -> tuple[str, str]:
        return (self.source, self.event_id)

    def to_json(self) -> dict[str, Any]:
        """A JSON-compatible dict that `from_json` turns back into this half."""
        return {
            "kind": self.kind,
            "event_id": self.event_id,
            "source": self.source,
            "time": self.time.isoformat() if self.time else None,
            "extensions": self.extensions,
            "rows": [{"features": r.features, "input_size": r.input_size} for r in self.rows],
            "predictions": self.predictions,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "error": self.error,
            "overrides": self.overrides,
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> InferenceHalf:
        time = value.get("time")
        return cls(
            kind=value["kind"],
            event_id=value["event_id"],
            source=value["source"],
            time=dt.datetime.fromisoformat(time) if time else None,
            extensions=dict(value.get("extensions") or {}),
            rows=[Row(r["features"], int(r["input_size"])) for r in value.get("rows") or []],
            predictions=list(value.get("predictions") or []),
            model_name=value.get("model_name"),
            model_version=value.get("model_version"),
            error=value.get("error"),
            overrides=dict(value.get("overrides") or {}),
        )


# --- CloudEvents over HTTP ---------------------------------------------------------------------


def read_cloudevents(headers: Mapping[str, str], body: bytes) -> list[CloudEvent]:
    """The CloudEvents of one HTTP request, in binary, structured or batch mode.

    Args:
        headers: the request headers (any case).
        body: the request body, decompressed.

    Raises:
        KServePayloadError: 400 when the request is not a CloudEvent or its JSON is broken,
            415 for a payload that is not JSON, 422 for a missing or invalid attribute.
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    media_type = _media_type(lowered.get("content-type"))
    if media_type == STRUCTURED:
        return [_structured_event(_load_json(body, "the structured CloudEvent"), 0)]
    if media_type == BATCH:
        events = _load_json(body, "the CloudEvents batch")
        if not isinstance(events, list) or not events:
            raise KServePayloadError("a CloudEvents batch must be a non-empty JSON array")
        return [_structured_event(event, index) for index, event in enumerate(events)]
    return [_binary_event(lowered, media_type, body)]


def _binary_event(headers: dict[str, str], media_type: str, body: bytes) -> CloudEvent:
    if "ce-specversion" not in headers:
        raise KServePayloadError(
            "not a CloudEvent: send binary mode (ce-id, ce-type, ce-source, ce-specversion "
            f"headers) or structured mode (Content-Type: {STRUCTURED})",
            400,
        )
    attributes = {
        name[3:]: unquote(value) for name, value in headers.items() if name.startswith("ce-")
    }
    _check_json_media_type(media_type, "Content-Type")
    data = _load_json(body, "the event data") if body.strip() else None
    return _event(attributes, data, "header ce-")


def _structured_event(value: Any, index: int) -> CloudEvent:
    where = f"event {index}: " if index else ""
    if not isinstance(value, dict):
        raise KServePayloadError(f"{where}a structured CloudEvent must be a JSON object")
    attributes = {
        key: value[key]
        for key in value
        if key not in ("data", "data_base64") and isinstance(value[key], str)
    }
    content_type = _media_type(attributes.get("datacontenttype"))
    _check_json_media_type(content_type, f"{where}attribute datacontenttype")
    if "data_base64" in value:
        try:
            raw = base64.b64decode(value["data_base64"], validate=True)
        except (ValueError, TypeError):
            raise KServePayloadError(f"{where}data_base64 is not valid base64") from None
        data = _load_json(raw, f"{where}the event data")
    else:
        data = value.get("data")
    return _event(attributes, data, f"{where}attribute ")


def _event(attributes: dict[str, str], data: Any, prefix: str) -> CloudEvent:
    for name in ("specversion", "id", "source", "type"):
        if not attributes.get(name):
            raise KServePayloadError(f"{prefix}{name} is missing or empty")
    if attributes["specversion"] not in SPEC_VERSIONS:
        raise KServePayloadError(
            f"{prefix}specversion {attributes['specversion']!r} is not supported: use 1.0"
        )
    if len(attributes["id"]) > MAX_EVENT_ID_LENGTH or "\x00" in attributes["id"]:
        raise KServePayloadError(
            f"{prefix}id is longer than {MAX_EVENT_ID_LENGTH} characters or holds a NUL"
        )
    if attributes["type"] not in EVENT_KINDS:
        raise KServePayloadError(
            f"{prefix}type {attributes['type']!r} is not an inference request or response "
            f"event: expected one of {', '.join(sorted(EVENT_KINDS))}"
        )
    return CloudEvent(
        id=attributes["id"],
        source=attributes["source"],
        type=attributes["type"],
        time=_parse_time(attributes.get("time"), f"{prefix}time"),
        extensions={k: v for k, v in attributes.items() if k not in CONTEXT_ATTRIBUTES},
        data=data,
    )


def _media_type(value: str | None) -> str:
    return (value or "").split(";")[0].strip().lower()


def _check_json_media_type(media_type: str, where: str) -> None:
    """Payload loggers copy the inference request's Content-Type; JSON (or none) is decoded."""
    if media_type and media_type != "application/json" and not media_type.endswith("+json"):
        raise KServePayloadError(
            f"{where} {media_type!r}: only JSON payloads are decoded "
            "(the binary tensor extension and gRPC payloads are not)",
            415,
        )


def _load_json(data: bytes, what: str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise KServePayloadError(f"{what} is not valid JSON: {error}", 400) from None


def _parse_time(value: str | None, name: str) -> dt.datetime | None:
    if not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise KServePayloadError(f"{name} {value[:64]!r} is not an RFC 3339 timestamp") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


# --- payloads ----------------------------------------------------------------------------------


def decode_half(
    event: CloudEvent,
    *,
    max_features: int = DEFAULT_MAX_FEATURES,
    overrides: Mapping[str, str] | None = None,
) -> InferenceHalf:
    """The request or response of one inference, from its payload-logger event.

    Args:
        event: a request or response event (`read_cloudevents`).
        max_features: most values an instance (or a prediction) may have to be kept.
        overrides: ``model`` and ``model_version`` to use instead of what the events say.

    Raises:
        KServePayloadError: 422 naming what is wrong with the payload.
    """
    kind = EVENT_KINDS[event.type]
    common: dict[str, Any] = {
        "kind": kind,
        "event_id": event.id,
        "source": event.source,
        "time": event.time,
        "extensions": event.extensions,
        "overrides": dict(overrides or {}),
    }
    where = f"{kind} event {event.id}"
    if not isinstance(event.data, dict):
        raise KServePayloadError(f"{where}: the payload must be a JSON object")
    try:
        if kind == "request":
            return InferenceHalf(**common, rows=_request_rows(event.data, max_features))
        return InferenceHalf(**common, **_response_fields(event.data, max_features))
    except KServePayloadError as error:
        raise KServePayloadError(f"{where}: {error}", error.status) from None


def _request_rows(payload: dict[str, Any], max_features: int) -> list[Row]:
    if "instances" in payload:
        instances = _rows_of(payload["instances"], "instances")
    elif "inputs" in payload:
        instances = _inputs(payload["inputs"], "inputs")
    elif isinstance(payload.get("data"), dict):
        instances = _seldon_rows(payload["data"], single=False)
    elif "jsonData" in payload:
        instances = [payload["jsonData"]]
    else:
        raise KServePayloadError("the request has no instances, inputs or data")
    return [_row(instance, max_features) for instance in instances]


def _response_fields(payload: dict[str, Any], max_features: int) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "model_name": _optional_text(payload.get("model_name")),
        "model_version": _optional_text(payload.get("model_version")),
        "error": _response_error(payload),
    }
    if "predictions" in payload:
        rows = _rows_of(payload["predictions"], "predictions")
    elif "outputs" in payload:
        rows = _inputs(payload["outputs"], "outputs")
        if _is_single_tensor(payload["outputs"]):
            rows = [next(iter(row.values())) for row in rows]  # one output: its value
    elif isinstance(payload.get("data"), dict):
        rows = _seldon_rows(payload["data"], single=True)
    elif "jsonData" in payload:
        rows = [payload["jsonData"]]
    elif fields["error"] is not None:
        rows = []
    else:
        raise KServePayloadError("the response has no predictions, outputs or data")
    fields["predictions"] = [_prediction(row, max_features) for row in rows]
    return fields


def _response_error(payload: dict[str, Any]) -> str | None:
    """V2 error bodies carry ``error``; Seldon's carry ``status.status == FAILURE``."""
    if isinstance(payload.get("error"), str):
        return payload["error"][:MAX_STRING_LENGTH]
    status = payload.get("status")
    if isinstance(status, dict) and status.get("status") == "FAILURE":
        return str(status.get("info") or status.get("reason") or "FAILURE")[:MAX_STRING_LENGTH]
    return None


def _rows_of(value: Any, name: str) -> list[Any]:
    if not isinstance(value, list):
        raise KServePayloadError(f"{name} must be a JSON array")
    return value


def _inputs(value: Any, name: str) -> list[Any]:
    """V2 tensors, V1 rows, or V1 columns (``{name: [one value per instance]}``)."""
    if isinstance(value, list) and value and all(_is_tensor(item) for item in value):
        return _tensor_rows(value, name.removesuffix("s"))
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return _columns_to_rows(value, name)
    raise KServePayloadError(f"{name} must be a JSON array or object")


def _columns_to_rows(columns: dict[str, Any], name: str) -> list[dict[str, Any]]:
    lengths = {len(v) for v in columns.values() if isinstance(v, list)}
    if len(lengths) != 1 or len(columns) != sum(isinstance(v, list) for v in columns.values()):
        raise KServePayloadError(f"the columns of {name} must be arrays of one length")
    (length,) = lengths
    return [{key: values[i] for key, values in columns.items()} for i in range(length)]


# --- V2 (Open Inference Protocol) and Seldon tensors --------------------------------------------


@dataclass(frozen=True)
class _Tensor:
    name: str
    shape: list[int]
    values: list[Any]


def _is_single_tensor(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 1 and _is_tensor(value[0])


def _is_tensor(item: Any) -> bool:
    return isinstance(item, dict) and {"name", "shape", "datatype", "data"} <= item.keys()


def _tensor(item: dict[str, Any], what: str) -> _Tensor:
    name, shape = item["name"], item["shape"]
    if not isinstance(name, str) or not name:
        raise KServePayloadError(f"{what}: name must be a non-empty string")
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise KServePayloadError(f"{what} {name!r}: shape must be a list of sizes")
    values = list(_leaves(item["data"]))
    if len(values) != math.prod(shape):
        raise KServePayloadError(f"{what} {name!r} has {len(values)} values for shape {shape}")
    return _Tensor(name, shape, values)


def _tensor_rows(items: list[dict[str, Any]], what: str) -> list[Any]:
    """One dict per instance: tensor name -> its values in that instance. The first dimension
    is the batch when every tensor has the same first dimension; otherwise the whole payload
    is one instance."""
    tensors = [_tensor(item, what) for item in items]
    batch_sizes = {t.shape[0] if t.shape else None for t in tensors}
    batch = batch_sizes.pop() if len(batch_sizes) == 1 else None
    if batch is None:
        return [{t.name: _row_value(t.values) for t in tensors}]
    rows = []
    for index in range(batch):
        row = {}
        for tensor in tensors:
            size = len(tensor.values) // batch if batch else 0
            row[tensor.name] = _row_value(tensor.values[index * size : (index + 1) * size])
        rows.append(row)
    return rows


def _row_value(values: list[Any]) -> Any:
    return values[0] if len(values) == 1 else values


def _seldon_rows(data: dict[str, Any], *, single: bool) -> list[Any]:
    """Rows of a SeldonMessage's ``data``, named by its ``names`` where they fit."""
    names = data.get("names") if isinstance(data.get("names"), list) else None
    if "ndarray" in data:
        rows = _rows_of(data["ndarray"], "data.ndarray")
    elif isinstance(data.get("tensor"), dict):
        tensor = data["tensor"]
        item = {"name": "tensor", "datatype": "", **tensor, "data": tensor.get("values")}
        rows = [r["tensor"] for r in _tensor_rows([item], "data.tensor")]
    else:
        raise KServePayloadError("data must hold an ndarray or a tensor")
    return [_name_row(row, names, single=single) for row in rows]


def _name_row(row: Any, names: list[Any] | None, *, single: bool) -> Any:
    if names and isinstance(row, list) and len(row) == len(names):
        if single and len(row) == 1:
            return row[0]
        return {str(name): value for name, value in zip(names, row, strict=True)}
    return row


# --- features and predictions ------------------------------------------------------------------


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


def _flatten(value: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    """(name, scalar) of every leaf: object keys dotted, list items indexed."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _flatten(item, f"{prefix}[{index}]" if prefix else str(index))
    else:
        yield prefix or "input", value


def _row(instance: Any, max_features: int) -> Row:
    features: dict[str, Any] = {}
    size = 0
    for name, value in _flatten(instance, ""):
        size += 1
        if size <= max_features and _is_feature_value(value):
            features[name] = _fit_integer(value)
    return Row(features if size <= max_features else None, size)


def _is_feature_value(value: Any) -> bool:
    """Numbers, strings, booleans and null; strings past the storable length are left out."""
    if isinstance(value, str):
        return len(value) <= MAX_STRING_LENGTH
    return value is None or isinstance(value, bool | int | float)


def _fit_integer(value: Any) -> Any:
    """Integers beyond 64 bits (a JSON column cannot hold them) become floats."""
    is_integer = isinstance(value, int) and not isinstance(value, bool)
    if is_integer and not INT64_MIN <= value <= INT64_MAX:
        return float(value)
    return value


def _prediction(value: Any, max_values: int) -> Any:
    """A prediction as the model returned it; None when it has more than `max_values` values
    (a mask or an embedding is not kept in every record)."""
    size = sum(1 for _ in _flatten(value, ""))
    return value if size <= max_values else None


def _optional_text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


# --- joining -----------------------------------------------------------------------------------


def join_halves(request: InferenceHalf, response: InferenceHalf) -> list[dict[str, Any]]:
    """The inference records (DESIGN 3.1) of one request and its response.

    The model is the ``model`` override, else the ``inferenceservicename`` attribute, else the
    V2 response's ``model_name``; the version the ``model_version`` override, else the V2
    response's, else ``unknown``. The timestamp is the request event's time and the latency
    the response event's time minus it. One record per instance; the request id is the event
    id, with ``#<index>`` appended when the request held several instances.

    Raises:
        KServePayloadError: no model name is known, or the counts of instances and
            predictions differ.
    """
    model = _model_name(request, response)
    version = (
        request.overrides.get("model_version")
        or response.overrides.get("model_version")
        or response.model_version
        or UNKNOWN_VERSION
    )
    rows = request.rows
    if response.error is None and len(response.predictions) != len(rows):
        raise KServePayloadError(
            f"response event {response.event_id} has {len(response.predictions)} predictions "
            f"for the {len(rows)} instances of its request"
        )
    base: dict[str, Any] = {
        "model": model,
        "model_version": version,
        "timestamp": request.time,
        "latency_ms": _latency_ms(request, response),
        "status": "error" if response.error is not None else "ok",
    }
    tags = _tags(request.extensions, response.extensions)
    records = []
    for index, row in enumerate(rows):
        record = dict(base)
        record["request_id"] = request.event_id if len(rows) == 1 else f"{request.event_id}#{index}"
        record["input_size"] = row.input_size
        optional = {
            "features": row.features,
            "prediction": None if response.error else response.predictions[index],
            "error": response.error,
            "tags": tags,
        }
        record.update((k, v) for k, v in optional.items() if v is not None)
        records.append(record)
    return records


def _model_name(request: InferenceHalf, response: InferenceHalf) -> str:
    model = (
        request.overrides.get("model")
        or response.overrides.get("model")
        or request.extensions.get(MODEL_ATTRIBUTE)
        or response.extensions.get(MODEL_ATTRIBUTE)
        or response.model_name
    )
    if not model:
        raise KServePayloadError(
            f"event {request.event_id}: no model name: neither the ce-{MODEL_ATTRIBUTE} "
            "attribute nor a V2 model_name is present; add ?model=NAME to the sink URL"
        )
    return model


def _latency_ms(request: InferenceHalf, response: InferenceHalf) -> float:
    if request.time is None or response.time is None:
        return 0.0
    return max(0.0, (response.time - request.time).total_seconds() * 1000.0)


def _tags(*extensions: dict[str, str]) -> dict[str, str] | None:
    tags: dict[str, str] = {}
    for attributes in extensions:
        for name in TAG_ATTRIBUTES:
            value = attributes.get(name)
            if value and len(value) <= MAX_TAG_LENGTH and name not in tags:
                tags[name] = value
    return tags or None
