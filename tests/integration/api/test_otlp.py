"""POST /v1/traces answers as the OTLP/HTTP specification says, on both databases: protobuf and
JSON (gzip and deflate too), partial success, google.rpc.Status errors, limits, auth, idempotency
and back-pressure."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Any

import orjson
import pytest
from google.rpc.status_pb2 import Status as RpcStatus
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from sqlalchemy import func, select

from observe.db.engine import Database
from observe.db.models import Span, SpanRollup, Trace
from tests.conftest import bearer
from tests.integration.api.helpers import app_client
from tests.integration.api.test_overload import OverloadedWriter, UnavailableWriter

OTLP = Path(__file__).parents[2] / "data" / "otlp"
PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}
EXAMPLE = (OTLP / "trace.json").read_bytes()
SDK_PROTOBUF = (OTLP / "traces.pb").read_bytes()
WITH_ERRORS = (OTLP / "traces_with_errors.jsonl").read_bytes().splitlines()


def post(client: Any, body: bytes, key: str | None, **headers: str) -> Any:
    auth = bearer(key) if key else {}
    return client.post("/v1/traces", content=body, headers={**auth, **headers})


def num_spans(db: Database) -> int:
    with db.sessions() as session:
        return session.scalar(select(func.count()).select_from(Span)) or 0


def protobuf_response(response: Any) -> ExportTraceServiceResponse:
    assert response.headers["content-type"] == "application/x-protobuf"
    return ExportTraceServiceResponse.FromString(response.content)


def json_status(response: Any) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/json"
    body = orjson.loads(response.content)
    assert set(body) == {"code", "message"}, body
    return body


def protobuf_status(response: Any) -> RpcStatus:
    assert response.headers["content-type"] == "application/x-protobuf"
    return RpcStatus.FromString(response.content)


# --- success --------------------------------------------------------------------------------


def test_the_official_json_example_is_stored(client: Any, api_keys: dict[str, str], db: Database):
    response = post(client, EXAMPLE, api_keys["ingest"], **JSON)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert orjson.loads(response.content) == {}  # full success: no partialSuccess
    with db.sessions() as session:
        span = session.scalars(select(Span)).one()
    assert (span.trace_id, span.span_id, span.parent_span_id) == (
        "5b8efff798038103d269b633813fc60c",
        "eee19b7ec3c1b174",
        "eee19b7ec3c1b173",
    )
    assert (span.service_name, span.name, span.kind, span.duration_ms) == (
        "my.service",
        "I'm a server span",
        "server",
        1000.0,
    )
    assert span.attributes == {
        "my.span.attr": "some value",
        "otel.scope.name": "my.library",
        "otel.scope.version": "1.0.0",
    }


def test_an_sdk_export_in_protobuf_is_stored_with_models_and_rollups(
    client: Any, api_keys: dict[str, str], db: Database
) -> None:
    response = post(client, SDK_PROTOBUF, api_keys["ingest"], **PROTOBUF)

    assert response.status_code == 200, response.text
    assert not protobuf_response(response).HasField("partial_success")
    assert num_spans(db) == 7
    with db.sessions() as session:
        models = dict(session.execute(select(Trace.trace_id, Trace.model)).all())
        errors = session.scalar(select(func.sum(SpanRollup.num_errors)))
    assert models == {
        "00000000000000000000000000000001": "fraud-scorer",
        "00000000000000000000000000000002": "fraud-scorer",
        "00000000000000000000000000000003": None,
    }
    assert errors == 2 * 2  # the failed lookup and its root, in service and model rollups


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_compressed_bodies_are_accepted(
    client: Any, api_keys: dict[str, str], db: Database, encoding: str
) -> None:
    compress = gzip.compress if encoding == "gzip" else zlib.compress
    headers = {**PROTOBUF, "Content-Encoding": encoding}

    response = post(client, compress(SDK_PROTOBUF), api_keys["ingest"], **headers)

    assert response.status_code == 200, response.text
    assert num_spans(db) == 7


def test_an_export_sent_again_is_not_stored_twice(
    client: Any, api_keys: dict[str, str], db: Database
) -> None:
    first = post(client, SDK_PROTOBUF, api_keys["ingest"], **PROTOBUF)
    again = post(client, SDK_PROTOBUF, api_keys["ingest"], **PROTOBUF)

    assert (first.status_code, again.status_code) == (200, 200)
    assert not protobuf_response(again).HasField("partial_success")
    assert num_spans(db) == 7
    with db.sessions() as session:
        assert session.scalar(select(func.sum(Trace.num_spans))) == 7
        assert session.scalar(select(func.sum(SpanRollup.num_spans))) == 7 + 6  # service + model


def test_an_empty_request_succeeds(client: Any, api_keys: dict[str, str], db: Database) -> None:
    assert post(client, b"{}", api_keys["ingest"], **JSON).status_code == 200
    assert post(client, b"", api_keys["ingest"], **PROTOBUF).status_code == 200
    assert num_spans(db) == 0


# --- partial success --------------------------------------------------------------------------


def test_invalid_spans_are_rejected_one_by_one_in_json(
    client: Any, api_keys: dict[str, str], db: Database
) -> None:
    response = post(client, WITH_ERRORS[2], api_keys["ingest"], **JSON)

    assert response.status_code == 200, response.text
    partial = orjson.loads(response.content)["partialSuccess"]
    assert partial["rejectedSpans"] == "1"
    assert partial["errorMessage"] == (
        "1 span(s) rejected: span 0000000000000002 of trace 00000000000000000000000000000001: "
        "endTimeUnixNano is before startTimeUnixNano"
    )
    with db.sessions() as session:
        assert list(session.scalars(select(Span.name))) == ["predict"]


def test_invalid_spans_are_rejected_one_by_one_in_protobuf(
    client: Any, api_keys: dict[str, str], db: Database
) -> None:
    request = ExportTraceServiceRequest.FromString(SDK_PROTOBUF)
    spans = request.resource_spans[0].scope_spans[0].spans
    spans[0].trace_id = b"\x00" * 16
    spans[1].span_id = b"\x01\x02"

    response = post(client, request.SerializeToString(), api_keys["ingest"], **PROTOBUF)

    assert response.status_code == 200, response.text
    partial = protobuf_response(response).partial_success
    assert partial.rejected_spans == 2
    assert "traceId: trace id of all zeros is invalid" in partial.error_message
    assert "spanId: span id must be 16 hex digits, got '0102'" in partial.error_message
    assert num_spans(db) == 5


def test_a_request_whose_every_span_is_invalid_stores_nothing(
    client: Any, api_keys: dict[str, str], db: Database
) -> None:
    body = orjson.dumps(
        {"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "xyz", "spanId": "1"}] * 3}]}]}
    )

    response = post(client, body, api_keys["ingest"], **JSON)

    assert response.status_code == 200
    assert orjson.loads(response.content)["partialSuccess"]["rejectedSpans"] == "3"
    assert num_spans(db) == 0


# --- failures ---------------------------------------------------------------------------------


def test_undecodable_json_is_a_400_with_a_json_status(
    client: Any, api_keys: dict[str, str], db: Database
) -> None:
    response = post(client, WITH_ERRORS[1], api_keys["ingest"], **JSON)

    assert response.status_code == 400
    status = json_status(response)
    assert status["code"] == 3
    assert "not valid JSON" in status["message"]
    assert num_spans(db) == 0


def test_undecodable_protobuf_is_a_400_with_a_protobuf_status(
    client: Any, api_keys: dict[str, str], db: Database
) -> None:
    response = post(client, EXAMPLE, api_keys["ingest"], **PROTOBUF)

    assert response.status_code == 400
    status = protobuf_status(response)
    assert status.code == 3
    assert "not a protobuf ExportTraceServiceRequest" in status.message
    assert num_spans(db) == 0


def test_a_truncated_gzip_body_is_a_400(client: Any, api_keys: dict[str, str]) -> None:
    body = gzip.compress(SDK_PROTOBUF)[:-10]
    response = post(client, body, api_keys["ingest"], **PROTOBUF, **{"Content-Encoding": "gzip"})

    assert response.status_code == 400
    assert "truncated" in protobuf_status(response).message


def test_a_body_over_the_limit_after_decompression_is_a_413(
    db: Database, tmp_path: Path, api_keys: dict[str, str]
) -> None:
    request = ExportTraceServiceRequest.FromString(SDK_PROTOBUF)
    request.resource_spans[0].scope_spans[0].spans[0].name = "x" * 2_000_000
    body = gzip.compress(request.SerializeToString())
    assert len(body) < 1024 * 1024

    headers = {**PROTOBUF, "Content-Encoding": "gzip"}
    with app_client(db, tmp_path, max_body_mb=1.0) as client:
        response = post(client, body, api_keys["ingest"], **headers)

    assert response.status_code == 413
    assert "after decompression" in protobuf_status(response).message
    assert num_spans(db) == 0


def test_more_spans_than_a_batch_may_hold_is_a_413(
    db: Database, tmp_path: Path, api_keys: dict[str, str]
) -> None:
    with app_client(db, tmp_path, max_batch_records=6) as client:
        response = post(client, SDK_PROTOBUF, api_keys["ingest"], **PROTOBUF)

    assert response.status_code == 413
    assert "7 spans" in protobuf_status(response).message
    assert num_spans(db) == 0


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "text/plain"},
        {},
        {**PROTOBUF, "Content-Encoding": "br"},
    ],
    ids=["text", "missing", "brotli"],
)
def test_other_media_types_and_encodings_are_a_415(
    client: Any, api_keys: dict[str, str], db: Database, headers: dict[str, str]
) -> None:
    response = post(client, SDK_PROTOBUF, api_keys["ingest"], **headers)

    assert response.status_code == 415
    message = (
        protobuf_status(response).message
        if headers.get("Content-Type") == PROTOBUF["Content-Type"]
        else json_status(response)["message"]
    )
    assert "unsupported Content-" in message
    assert num_spans(db) == 0


# --- auth -------------------------------------------------------------------------------------


def test_a_request_without_a_key_is_a_401_with_a_status_and_a_challenge(
    client: Any, db: Database
) -> None:
    response = post(client, SDK_PROTOBUF, None, **PROTOBUF)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert protobuf_status(response).code == 16
    assert num_spans(db) == 0


def test_a_key_without_the_ingest_scope_is_a_403(client: Any, api_keys: dict[str, str]) -> None:
    response = post(client, EXAMPLE, api_keys["read"], **JSON)

    assert response.status_code == 403
    assert "ingest" in json_status(response)["message"]


def test_the_key_may_come_as_x_api_key(client: Any, api_keys: dict[str, str], db: Database):
    response = post(client, EXAMPLE, None, **JSON, **{"X-API-Key": api_keys["ingest"]})

    assert response.status_code == 200
    assert num_spans(db) == 1


# --- back-pressure ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("writer", "status", "retry_after"),
    [(OverloadedWriter(), 429, "1"), (UnavailableWriter(), 503, "5")],
    ids=["overloaded", "unavailable"],
)
def test_back_pressure_is_a_retryable_status_with_retry_after(
    db: Database,
    tmp_path: Path,
    api_keys: dict[str, str],
    writer: Any,
    status: int,
    retry_after: str,
) -> None:
    with app_client(db, tmp_path, writer=writer) as client:
        response = post(client, SDK_PROTOBUF, api_keys["ingest"], **PROTOBUF)

    assert response.status_code == status
    assert response.headers["retry-after"] == retry_after
    assert protobuf_status(response).message
    assert num_spans(db) == 0
