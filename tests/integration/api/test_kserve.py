"""POST /api/v1/kserve: payload-logger CloudEvents as KServe and Seldon send them, joined into
records through the full app (batch writer, auth), and refused with a 4xx naming the problem."""

from __future__ import annotations

import gzip
import logging
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select

from observe.api.security import RedactQueryKeys
from observe.db.engine import Database
from observe.db.models import KServePair
from tests.conftest import bearer
from tests.http_fixtures import read_http
from tests.integration.api.helpers import app_client, row_counts

PATH = "/api/v1/kserve"
V1_ID = "0009174a-24a8-4603-b098-09c8799950e9"


def send(client: Any, fixture: str, key: str, **params: str) -> Any:
    request = read_http(fixture)
    return client.post(
        PATH,
        content=request.body,
        headers={**request.sendable_headers(), **bearer(key)},
        params=params,
    )


def answer(response: Any) -> dict[str, int]:
    assert response.status_code == 200, response.text
    return response.json()


def read_records(client: Any, key: str, model: str) -> list[dict[str, Any]]:
    response = client.get("/api/v1/records", params={"model": model}, headers=bearer(key))
    assert response.status_code == 200, response.text
    return sorted(response.json()["items"], key=lambda r: r["request_id"])


def pending_pairs(db: Database) -> int:
    with db.sessions() as session:
        query = select(func.count()).select_from(KServePair).where(KServePair.joined_at.is_(None))
        return session.scalar(query) or 0


@pytest.mark.parametrize("response_first", [False, True])
def test_a_v1_batch_in_binary_mode_becomes_records(
    client: Any, api_keys: dict[str, str], response_first: bool
) -> None:
    key = api_keys["ingest"]
    halves = ["v1-binary-request.http", "v1-binary-response.http"]
    first, second = reversed(halves) if response_first else halves

    assert answer(send(client, first, key)) == {
        "accepted": 1,
        "new": 0,
        "duplicates": 0,
        "pending": 1,
    }
    assert answer(send(client, second, key)) == {
        "accepted": 1,
        "new": 2,
        "duplicates": 0,
        "pending": 0,
    }

    records = read_records(client, api_keys["read"], "sklearn-iris")
    assert [r["request_id"] for r in records] == [f"{V1_ID}#0", f"{V1_ID}#1"]
    assert records[1]["features"] == {"0": 6.0, "1": 3.4, "2": 4.5, "3": 1.6}
    assert records[1]["prediction"] == 1
    assert records[1]["model_version"] == "unknown"
    assert records[1]["latency_ms"] == pytest.approx(42.784)
    assert records[1]["timestamp"].startswith("2026-11-16T14:05:00.078952")


@pytest.mark.parametrize(
    ("stem", "model", "num_records"),
    [
        ("v2-binary", "iris-v2", 3),
        ("v1-structured", "fraud-scorer", 1),
        ("v2-structured-base64", "ticket-router", 1),
        ("seldon-binary", "income-classifier", 2),
    ],
)
def test_each_payload_and_mode(
    client: Any, api_keys: dict[str, str], stem: str, model: str, num_records: int
) -> None:
    key = api_keys["ingest"]
    answer(send(client, f"{stem}-request.http", key))

    assert answer(send(client, f"{stem}-response.http", key))["new"] == num_records
    assert len(read_records(client, api_keys["read"], model)) == num_records


def test_the_v2_record_carries_named_features_and_every_output(
    client: Any, api_keys: dict[str, str]
) -> None:
    answer(send(client, "v2-binary-response.http", api_keys["ingest"]))
    answer(send(client, "v2-binary-request.http", api_keys["ingest"]))

    first = read_records(client, api_keys["read"], "iris-v2")[0]
    assert first["model_version"] == "v3"
    assert first["features"]["input-0[3]"] == 1.4
    assert first["features"]["source"] == "web"
    assert first["prediction"] == {"predict": 1, "predict_proba": [0.01, 0.87, 0.12]}
    assert first["tags"] == {"namespace": "ml-serving", "component": "predictor"}
    assert first["input_size"] == 5


def test_repeated_events_are_duplicates(
    client: Any, api_keys: dict[str, str], db: Database
) -> None:
    key = api_keys["ingest"]
    for fixture in ["v1-binary-request.http", "v1-binary-request.http", "v1-binary-response.http"]:
        send(client, fixture, key)

    again = answer(send(client, "v1-binary-response.http", key))

    assert again == {"accepted": 1, "new": 0, "duplicates": 1, "pending": 0}
    assert row_counts(db)["inference_records"] == 2


def test_both_halves_in_one_cloudevents_batch(client: Any, api_keys: dict[str, str]) -> None:
    request = read_http("v1-structured-request.http").body
    response = read_http("v1-structured-response.http").body

    result = client.post(
        PATH,
        content=gzip.compress(b"[" + response + b"," + request + b"]"),
        headers={
            "Content-Type": "application/cloudevents-batch+json",
            "Content-Encoding": "gzip",
            **bearer(api_keys["ingest"]),
        },
    )

    assert answer(result) == {"accepted": 2, "new": 1, "duplicates": 0, "pending": 0}


def test_query_parameters_name_the_model_and_version(client: Any, api_keys: dict[str, str]) -> None:
    key = api_keys["ingest"]
    options = {"model": "iris-classifier", "model_version": "2026-11-01"}
    send(client, "v1-binary-request.http", key, **options)
    send(client, "v1-binary-response.http", key, **options)

    records = read_records(client, api_keys["read"], "iris-classifier")
    assert {r["model_version"] for r in records} == {"2026-11-01"}


@pytest.mark.parametrize(
    ("fixture", "status", "message"),
    [
        ("errors/missing-id.http", 422, "header ce-id is missing or empty"),
        ("errors/feedback-type.http", 422, "is not an inference request or response event"),
        ("errors/binary-tensor.http", 415, "only JSON payloads are decoded"),
        ("errors/not-json.http", 400, "the event data is not valid JSON"),
        ("errors/v2-shape-mismatch.http", 422, "input 'input-0' has 7 values for shape [2, 4]"),
        ("errors/no-instances.http", 422, "the request has no instances, inputs or data"),
    ],
)
def test_events_observe_cannot_use_get_a_4xx_naming_the_problem(
    client: Any, api_keys: dict[str, str], db: Database, fixture: str, status: int, message: str
) -> None:
    response = send(client, fixture, api_keys["ingest"])

    assert response.status_code == status, response.text
    assert message in response.json()["detail"]
    assert not any(row_counts(db).values())
    assert pending_pairs(db) == 0


def test_a_response_that_does_not_fit_its_request_is_refused_and_the_request_waits(
    client: Any, api_keys: dict[str, str], db: Database
) -> None:
    key = api_keys["ingest"]
    answer(send(client, "errors/count-mismatch-request.http", key))

    response = send(client, "errors/count-mismatch-response.http", key)

    assert response.status_code == 422
    assert response.json()["detail"] == (
        "response event 1a2b3c4d-0000-4000-8000-00000000e002 has 3 predictions for the 2 "
        "instances of its request; nothing of this request was stored"
    )
    assert row_counts(db)["inference_records"] == 0
    assert pending_pairs(db) == 1


@pytest.mark.parametrize(
    ("body", "headers", "status", "message"),
    [
        (b"", {}, 400, "empty body"),
        (b'{"instances": [[1]]}', {"Content-Type": "application/json"}, 400, "not a CloudEvent"),
        (
            b"[]",
            {"Content-Type": "application/cloudevents-batch+json"},
            422,
            "non-empty JSON array",
        ),
        (b"{", {"Content-Type": "application/cloudevents+json"}, 400, "not valid JSON"),
    ],
)
def test_requests_that_are_not_cloudevents(
    client: Any,
    api_keys: dict[str, str],
    body: bytes,
    headers: dict[str, str],
    status: int,
    message: str,
) -> None:
    response = client.post(PATH, content=body, headers={**headers, **bearer(api_keys["ingest"])})

    assert response.status_code == status
    assert message in response.json()["detail"]


def test_the_payload_logger_can_send_its_key_in_the_url(
    client: Any, api_keys: dict[str, str]
) -> None:
    request = read_http("v1-binary-request.http")
    headers = request.sendable_headers()

    missing = client.post(PATH, content=request.body, headers=headers)
    wrong_scope = client.post(
        PATH, content=request.body, headers=headers, params={"api_key": api_keys["read"]}
    )
    accepted = client.post(
        PATH, content=request.body, headers=headers, params={"api_key": api_keys["ingest"]}
    )

    assert missing.status_code == 401
    assert "?api_key=KEY" in missing.json()["detail"]
    assert wrong_scope.status_code == 403
    assert answer(accepted)["pending"] == 1


def test_other_routes_take_no_key_from_the_url(client: Any, api_keys: dict[str, str]) -> None:
    response = client.get("/api/v1/models", params={"api_key": api_keys["admin"]})

    assert response.status_code == 401


def test_access_logs_show_no_key_from_the_url() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("10.0.0.7:51234", "POST", "/api/v1/kserve?model=m&api_key=obs_secret&x=1", "1.1", 200),
        None,
    )

    assert RedactQueryKeys().filter(record)
    assert "obs_secret" not in record.getMessage()
    assert "/api/v1/kserve?model=m&api_key=***&x=1" in record.getMessage()


def test_unpaired_halves_are_dropped_by_the_expiry_job_and_counted(
    db: Database, tmp_path: Path, api_keys: dict[str, str]
) -> None:
    # the server's scheduler runs the expiry job as often as the timeout (here 0.2 s)
    with app_client(db, tmp_path, kserve_pair_timeout_seconds=0.2) as client:
        answer(send(client, "v1-binary-request.http", api_keys["ingest"]))
        deadline = time.monotonic() + 10
        while pending_pairs(db) and time.monotonic() < deadline:
            time.sleep(0.05)
        metrics = client.get("/metrics", headers=bearer(api_keys["read"])).text
        late = answer(send(client, "v1-binary-response.http", api_keys["ingest"]))

    assert 'observe_kserve_unpaired_halves_total{half="request"} 1.0' in metrics
    assert late["pending"] == 1  # its request is gone: the response waits on its own
    assert row_counts(db)["inference_records"] == 0


def test_the_sink_is_documented_in_openapi(client: Any) -> None:
    spec = client.get("/openapi.json").json()
    operation = spec["paths"][PATH]["post"]

    assert "application/cloudevents+json" in operation["requestBody"]["content"]
    assert {"model", "model_version"} <= {p["name"] for p in operation["parameters"]}
    assert orjson.dumps(operation)  # serialisable
