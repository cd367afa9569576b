"""POST /api/v1/records, /labels, /events, /metrics: bodies accepted, idempotency, storage."""

from __future__ import annotations

import datetime as dt
import gzip
import zlib
from typing import Any

import pytest
from sqlalchemy import select

from observe.db.engine import Database
from observe.db.models import Event, MetricSample
from tests import factories
from tests.conftest import bearer
from tests.integration.api.helpers import json_array, ndjson, row_counts

MODEL = "fraud-scorer"


def post(client: Any, key: str, path: str, body: bytes, **headers: str) -> Any:
    return client.post(path, content=body, headers={**bearer(key), **headers})


def read_records(client: Any, key: str, **params: Any) -> list[dict[str, Any]]:
    response = client.get(
        "/api/v1/records", params={"model": MODEL, "limit": 1000, **params}, headers=bearer(key)
    )
    assert response.status_code == 200, response.text
    return response.json()["items"]


def test_a_committed_batch_is_readable_as_soon_as_it_is_acknowledged(
    client: Any, api_keys: dict[str, str], db: Database
) -> None:
    response = client.post(
        "/api/v1/records", json=factories.records(40), headers=bearer(api_keys["ingest"])
    )

    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 40, "new": 40, "duplicates": 0}
    counts = row_counts(db)
    assert counts["inference_records"] == 40
    assert counts["models"] == 1
    assert counts["model_versions"] == 1


def test_a_repeated_request_id_is_counted_as_duplicate_and_stored_once(
    client: Any, api_keys: dict[str, str], db: Database
) -> None:
    key = api_keys["ingest"]
    first = factories.records(10)
    assert client.post("/api/v1/records", json=first, headers=bearer(key)).json()["new"] == 10

    retry = first + factories.records(5, prefix="more")
    response = client.post("/api/v1/records", json=retry, headers=bearer(key))

    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 15, "new": 5, "duplicates": 10}
    assert row_counts(db)["inference_records"] == 15
    model = client.get(
        f"/api/v1/models/{MODEL}",
        params={"start": "2026-11-16T00:00:00Z", "end": "2026-11-17T00:00:00Z"},
        headers=bearer(api_keys["read"]),
    ).json()
    assert model["num_requests"] == 15, "duplicates must not be added to the latency rollups"


def test_a_request_id_repeated_inside_one_batch_is_stored_once(
    client: Any, api_keys: dict[str, str], db: Database
) -> None:
    batch = [
        factories.record(request_id="a", latency_ms=1.0),
        factories.record(request_id="b"),
        factories.record(request_id="a", latency_ms=999.0),
    ]

    response = client.post("/api/v1/records", json=batch, headers=bearer(api_keys["ingest"]))

    assert response.json() == {"accepted": 3, "new": 2, "duplicates": 1}
    stored = {r["request_id"]: r for r in read_records(client, api_keys["read"])}
    assert sorted(stored) == ["a", "b"]
    assert stored["a"]["latency_ms"] == 1.0, "the first occurrence is the one kept"


def test_the_same_request_id_in_another_model_is_a_different_record(
    client: Any, api_keys: dict[str, str], db: Database
) -> None:
    batch = [factories.record(request_id="r1"), factories.record(request_id="r1", model="ranker")]

    response = client.post("/api/v1/records", json=batch, headers=bearer(api_keys["ingest"]))

    assert response.json() == {"accepted": 2, "new": 2, "duplicates": 0}
    assert row_counts(db)["models"] == 2


BODY_FORMATS = {
    "json": ("application/json", json_array),
    "json-charset": ("application/json; charset=utf-8", json_array),
    "array-untyped": (None, json_array),
    "ndjson": ("application/x-ndjson", ndjson),
    "jsonl": ("application/jsonl", ndjson),
    "ndjson-untyped": (None, ndjson),
    "ndjson-as-json": ("application/json", ndjson),
}


def test_json_arrays_and_ndjson_are_accepted(
    client: Any, api_keys: dict[str, str], db: Database
) -> None:
    wrong = {}
    for name, (content_type, encode) in BODY_FORMATS.items():
        items = factories.records(7, prefix=name)
        headers = {"Content-Type": content_type} if content_type else {}
        response = post(client, api_keys["ingest"], "/api/v1/records", encode(items), **headers)
        if response.json() != {"accepted": 7, "new": 7, "duplicates": 0}:
            wrong[name] = f"{response.status_code}: {response.text[:200]}"

    assert not wrong, wrong
    stored = {r["request_id"] for r in read_records(client, api_keys["read"])}
    assert len(stored) == 7 * len(BODY_FORMATS)


def test_ndjson_blank_lines_and_crlf_are_tolerated(client: Any, api_keys: dict[str, str]) -> None:
    lines = [json_array([item])[1:-1] for item in factories.records(3)]
    body = b"\r\n".join([lines[0], b"", lines[1], b"   ", lines[2]]) + b"\r\n\r\n"

    response = post(
        client,
        api_keys["ingest"],
        "/api/v1/records",
        body,
        **{"Content-Type": "application/x-ndjson"},
    )

    assert response.status_code == 200, response.text
    assert response.json()["new"] == 3


def _gzip_members(body: bytes) -> bytes:
    middle = len(body) // 2
    return gzip.compress(body[:middle]) + gzip.compress(body[middle:])


COMPRESSIONS = {
    "gzip-json": ("gzip", gzip.compress, json_array),
    "gzip-ndjson": ("gzip", gzip.compress, ndjson),
    "x-gzip": ("x-gzip", gzip.compress, json_array),
    "deflate": ("deflate", zlib.compress, json_array),
    "gzip-two-members": ("gzip", _gzip_members, ndjson),
}


def test_compressed_bodies_are_accepted(
    client: Any, api_keys: dict[str, str], db: Database
) -> None:
    wrong = {}
    for name, (encoding, compress, encode) in COMPRESSIONS.items():
        items = factories.records(25, prefix=name)
        headers = {
            "Content-Encoding": encoding,
            "Content-Type": "application/x-ndjson" if encode is ndjson else "application/json",
        }
        body = compress(encode(items))
        response = post(client, api_keys["ingest"], "/api/v1/records", body, **headers)
        if response.json() != {"accepted": 25, "new": 25, "duplicates": 0}:
            wrong[name] = f"{response.status_code}: {response.text[:200]}"

    assert not wrong, wrong
    assert row_counts(db)["inference_records"] == 25 * len(COMPRESSIONS)


def test_every_field_of_a_record_is_stored_as_sent(client: Any, api_keys: dict[str, str]) -> None:
    sent = factories.record(
        request_id="full",
        timestamp="2026-11-16T14:30:15.250+02:00",
        status="error",
        error="upstream timeout",
        features={"amount": 12.5, "country": "DE", "card_present": True, "num_tx": 3, "note": None},
        prediction={"score": 0.93, "class": "fraud"},
        label=1,
        tags={"host": "gpu-2", "canary": "true"},
        input_size=512,
        trace_id="0AF7651916CD43DD8448EB211C80319C",
    )

    assert (
        client.post("/api/v1/records", json=[sent], headers=bearer(api_keys["ingest"])).status_code
        == 200
    )
    (stored,) = read_records(client, api_keys["read"])

    assert dt.datetime.fromisoformat(stored["timestamp"]) == dt.datetime(
        2026, 11, 16, 12, 30, 15, 250_000, tzinfo=dt.UTC
    )
    assert dt.datetime.fromisoformat(stored["timestamp"]).utcoffset() == dt.timedelta(0)
    for field in ("model", "model_version", "request_id", "latency_ms", "status", "error"):
        assert stored[field] == sent[field], field
    assert stored["features"] == sent["features"]
    assert stored["prediction"] == sent["prediction"]
    assert stored["label"] == 1
    assert stored["tags"] == sent["tags"]
    assert stored["input_size"] == 512
    assert stored["trace_id"] == "0af7651916cd43dd8448eb211c80319c"


def test_timestamps_are_stored_as_utc(client: Any, api_keys: dict[str, str]) -> None:
    noon = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
    sent = {
        "epoch": (1_795_348_800, noon),
        "epoch-fraction": (1_795_348_800.5, noon + dt.timedelta(milliseconds=500)),
        "epoch-milliseconds": (1_795_348_800_250, noon + dt.timedelta(milliseconds=250)),
        "no-offset-is-utc": ("2026-11-22T12:00:00", noon),
        "offset": ("2026-11-22T07:00:00-05:00", noon),
        "z": ("2026-11-22T12:00:00.125Z", noon + dt.timedelta(milliseconds=125)),
    }
    batch = [factories.record(request_id=name, timestamp=ts) for name, (ts, _) in sent.items()]

    response = client.post("/api/v1/records", json=batch, headers=bearer(api_keys["ingest"]))

    assert response.status_code == 200, response.text
    stored = {
        r["request_id"]: dt.datetime.fromisoformat(r["timestamp"])
        for r in read_records(client, api_keys["read"])
    }
    assert stored == {name: expected for name, (_, expected) in sent.items()}


def test_labels_arrive_later_by_request_id(client: Any, api_keys: dict[str, str]) -> None:
    key = api_keys["ingest"]
    client.post("/api/v1/records", json=factories.records(3), headers=bearer(key))
    labels = [
        factories.label(request_id="req-0", label=1),
        factories.label(request_id="req-2", label=0),
    ]

    response = client.post("/api/v1/labels", json=labels, headers=bearer(key))

    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 2, "new": 2, "duplicates": 0}
    stored = {r["request_id"]: r["label"] for r in read_records(client, api_keys["read"])}
    assert stored == {"req-0": 1, "req-1": None, "req-2": 0}


@pytest.mark.parametrize(
    "timestamp", [None, "2026-11-16T13:00:00Z"], ids=["arrival-time", "explicit"]
)
def test_a_retried_label_batch_is_counted_as_duplicates(
    client: Any, api_keys: dict[str, str], timestamp: str | None
) -> None:
    key = api_keys["ingest"]
    client.post("/api/v1/records", json=factories.records(2), headers=bearer(key))
    extra = {"timestamp": timestamp} if timestamp else {}
    labels = [factories.label(request_id=f"req-{i}", label=i, **extra) for i in range(2)]
    assert client.post("/api/v1/labels", json=labels, headers=bearer(key)).json()["new"] == 2

    retry = client.post("/api/v1/labels", json=labels, headers=bearer(key))

    assert retry.status_code == 200, retry.text
    assert retry.json() == {"accepted": 2, "new": 0, "duplicates": 2}


def test_a_label_may_arrive_before_its_record(client: Any, api_keys: dict[str, str]) -> None:
    key = api_keys["ingest"]
    label = factories.label(request_id="early", label={"fraud": True})
    assert client.post("/api/v1/labels", json=[label], headers=bearer(key)).json()["new"] == 1

    client.post("/api/v1/records", json=[factories.record(request_id="early")], headers=bearer(key))

    (stored,) = read_records(client, api_keys["read"])
    assert stored["label"] == {"fraud": True}


def test_a_newer_label_replaces_an_older_one_but_not_the_reverse(
    client: Any, api_keys: dict[str, str]
) -> None:
    key = api_keys["ingest"]
    client.post("/api/v1/records", json=[factories.record()], headers=bearer(key))
    first = factories.label(label=0, timestamp="2026-11-16T13:00:00Z")
    newer = factories.label(label=1, timestamp="2026-11-16T14:00:00Z")
    older = factories.label(label=2, timestamp="2026-11-16T12:30:00Z")

    answers = [
        client.post("/api/v1/labels", json=[label], headers=bearer(key)).json()
        for label in (first, newer, older)
    ]

    assert [answer["new"] for answer in answers] == [1, 1, 0]
    assert answers[2]["duplicates"] == 1
    assert read_records(client, api_keys["read"])[0]["label"] == 1


def test_events_are_stored_once(client: Any, api_keys: dict[str, str], db: Database) -> None:
    key = api_keys["ingest"]
    deploy = factories.event()
    rollback = factories.event(
        kind="rollback", model_version="v1", traffic_pct=None, description="back to v1"
    )

    response = client.post("/api/v1/events", json=[deploy, rollback, deploy], headers=bearer(key))
    retry = client.post("/api/v1/events", json=[rollback], headers=bearer(key))

    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 3, "new": 2, "duplicates": 1}
    assert retry.json() == {"accepted": 1, "new": 0, "duplicates": 1}
    with db.sessions() as session:
        stored = session.scalars(select(Event).order_by(Event.kind)).all()
        assert [(e.kind, e.model_version, e.traffic_pct) for e in stored] == [
            ("deploy", "v2", 100.0),
            ("rollback", "v1", None),
        ]
        assert stored[0].timestamp == factories.T0


def test_metric_samples_are_stored_once(
    client: Any, api_keys: dict[str, str], db: Database
) -> None:
    key = api_keys["ingest"]
    samples = [
        factories.metric(value=87.0),
        factories.metric(name="gpu_memory_used_mb", value=30_512.0),
        factories.metric(host="gpu-2", value=12.0, tags={"zone": "a"}),
    ]

    response = client.post("/api/v1/metrics", json=samples, headers=bearer(key))
    retry = client.post("/api/v1/metrics", json=samples[:1], headers=bearer(key))

    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 3, "new": 3, "duplicates": 0}
    assert retry.json() == {"accepted": 1, "new": 0, "duplicates": 1}
    with db.sessions() as session:
        stored = session.scalars(select(MetricSample)).all()
        assert sorted((s.host, s.name, s.value) for s in stored) == [
            ("gpu-1", "gpu_memory_used_mb", 30_512.0),
            ("gpu-1", "gpu_utilization_pct", 87.0),
            ("gpu-2", "gpu_utilization_pct", 12.0),
        ]
