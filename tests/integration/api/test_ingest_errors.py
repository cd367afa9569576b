"""Refused ingest bodies: a clear 4xx naming the item and field, and nothing of the batch stored."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from observe.db.engine import Database
from tests import factories
from tests.conftest import bearer
from tests.integration.api.helpers import app_client, json_array, ndjson, row_counts

BAD_INDEX = 3
RAW = "__raw__"


def batch_with(bad: dict[str, Any], size: int = 5) -> list[dict[str, Any]]:
    """`size` valid records with `bad` at BAD_INDEX."""
    items = factories.records(size)
    items[BAD_INDEX] = bad
    return items


def without(field: str) -> dict[str, Any]:
    item = factories.record(request_id="bad")
    del item[field]
    return item


def post_raw(
    client: Any, key: str, body: bytes, path: str = "/api/v1/records", **headers: str
) -> Any:
    headers.setdefault("Content-Type", "application/json")
    return client.post(path, content=body, headers={**bearer(key), **headers})


def refusal_problem(response: Any, *, index: int, field: str | None) -> str | None:
    """What is wrong with `response` as a 422 naming item `index` and `field`; None if nothing."""
    if response.status_code != 422:
        return f"{response.status_code}: {response.text[:200]}"
    body = response.json()
    reported = [(error.get("index"), error.get("field")) for error in body.get("errors", [])]
    if (index, field) not in reported:
        return f"item {index} field {field} not among {reported}"
    if f"item {index}" not in body["detail"] or (field and field not in body["detail"]):
        return f"detail does not name item {index} and field {field}: {body['detail']!r}"
    return None


def assert_names(response: Any, *, index: int, field: str | None) -> None:
    problem = refusal_problem(response, index=index, field=field)
    assert problem is None, problem


def assert_all_refused(problems: dict[str, str | None]) -> None:
    wrong = {name: problem for name, problem in problems.items() if problem}
    assert not wrong, "\n".join(f"{name}: {problem}" for name, problem in wrong.items())


def stored_problem(db: Database) -> str | None:
    counts = {table: count for table, count in row_counts(db).items() if count}
    return f"rows were stored: {counts}" if counts else None


# Records that decode as JSON but break the schema of DESIGN 3.1: (bad record, field named).
INVALID_RECORDS = {
    "missing-model": (without("model"), "model"),
    "missing-model-version": (without("model_version"), "model_version"),
    "missing-timestamp": (without("timestamp"), "timestamp"),
    "missing-request-id": (without("request_id"), "request_id"),
    "missing-latency": (without("latency_ms"), "latency_ms"),
    "negative-latency": (factories.record(latency_ms=-1), "latency_ms"),
    "latency-as-word": (factories.record(latency_ms="fast"), "latency_ms"),
    "latency-as-bool": (factories.record(latency_ms=True), "latency_ms"),
    "latency-as-list": (factories.record(latency_ms=[1]), "latency_ms"),
    "latency-beyond-float": (factories.record(latency_ms=10**30), "latency_ms"),
    "model-as-number": (factories.record(model=7), "model"),
    "empty-model": (factories.record(model=""), "model"),
    "model-too-long": (factories.record(model="m" * 300), "model"),
    "unknown-status": (factories.record(status="warn"), "status"),
    "unknown-field": (factories.record(colour="red"), "colour"),
    "features-as-list": (factories.record(features=[1, 2]), "features"),
    "nested-feature": (factories.record(features={"a": {"b": 1}}), "features.a"),
    "tag-as-number": (factories.record(tags={"host": 1}), "tags.host"),
    "negative-input-size": (factories.record(input_size=-1), "input_size"),
    "short-trace-id": (factories.record(trace_id="abc"), "trace_id"),
    "zero-trace-id": (factories.record(trace_id="0" * 32), "trace_id"),
    "nul-in-model": (factories.record(model="fraud\x00scorer"), "model"),
    "nul-in-version": (factories.record(model_version="v\x001"), "model_version"),
    "nul-in-request-id": (factories.record(request_id="\x00"), "request_id"),
    "nul-in-error": (factories.record(status="error", error="boom\x00"), "error"),
    "nul-in-feature-value": (factories.record(features={"country": "D\x00E"}), "features"),
    "nul-in-feature-name": (factories.record(features={"coun\x00try": "DE"}), "features"),
    "nul-in-tag-value": (factories.record(tags={"host": "gpu\x001"}), "tags.host"),
    "nul-in-prediction": (factories.record(prediction={"class": "fr\x00aud"}), "prediction"),
    "nul-in-label": (factories.record(label="\x00"), "label"),
    "huge-int-prediction": (factories.record(prediction=10**30), "prediction"),
    "huge-int-feature": (factories.record(features={"amount": -(10**30)}), "features"),
    "huge-int-label": (factories.record(label=[2**64]), "label"),
    "deep-prediction": (factories.record(prediction=json.loads("[" * 40 + "]" * 40)), "prediction"),
    "long-string-prediction": (factories.record(prediction="x" * 70_000), "prediction"),
    "timestamp-word": (factories.record(timestamp="yesterday"), "timestamp"),
    "timestamp-month-13": (factories.record(timestamp="2026-13-02T00:00:00Z"), "timestamp"),
    "timestamp-feb-30": (factories.record(timestamp="2026-02-30T00:00:00Z"), "timestamp"),
    "timestamp-before-1970": (factories.record(timestamp="1969-12-31T23:59:59Z"), "timestamp"),
    "timestamp-negative-epoch": (factories.record(timestamp=-1), "timestamp"),
    "timestamp-beyond-9999": (factories.record(timestamp=1e20), "timestamp"),
    "timestamp-offset-past-9999": (
        factories.record(timestamp="9999-12-31T23:30:00-05:00"),
        "timestamp",
    ),
    "timestamp-offset-before-year-1": (
        factories.record(timestamp="0001-01-01T00:30:00+05:00"),
        "timestamp",
    ),
    "timestamp-bool": (factories.record(timestamp=True), "timestamp"),
    "timestamp-null": (factories.record(timestamp=None), "timestamp"),
    "timestamp-object": (factories.record(timestamp={"s": 1}), "timestamp"),
    "item-not-an-object": ("not a record", None),
    "item-null": (None, None),
}


def test_an_invalid_record_is_named_and_nothing_of_its_batch_is_stored(
    client: Any, api_keys: dict[str, str], db: Database
) -> None:
    problems = {}
    for name, (bad, field) in INVALID_RECORDS.items():
        response = client.post(
            "/api/v1/records", json=batch_with(bad), headers=bearer(api_keys["ingest"])
        )
        problem = refusal_problem(response, index=BAD_INDEX, field=field)
        problems[name] = problem or stored_problem(db)

    assert_all_refused(problems)


# Values JSON itself cannot carry faithfully, written into the body as raw text.
RAW_VALUES = {
    "nan-latency": ("latency_ms", "NaN"),
    "infinity-latency": ("latency_ms", "Infinity"),
    "minus-infinity-latency": ("latency_ms", "-Infinity"),
    "overflowing-float-latency": ("latency_ms", "1e400"),
    "nan-prediction": ("prediction", "NaN"),
    "overflowing-float-prediction": ("prediction", "-1e999"),
    "nan-label": ("label", "[NaN]"),
    "infinity-input-size": ("input_size", "Infinity"),
    "5000-digit-latency": ("latency_ms", "9" * 5000),
    "5000-digit-prediction": ("prediction", "9" * 5000),
    "5000-digit-timestamp": ("timestamp", "9" * 5000),
    "nesting-10000-deep": ("prediction", "[" * 10_000 + "]" * 10_000),
    "nesting-10000-deep-objects": ("prediction", '{"a":' * 10_000 + "1" + "}" * 10_000),
    "nul-escape-in-key": ("prediction", '{"k\\u0000": 1}'),
    "raw-nul-byte-in-string": ("model_version", '"v\x001"'),
    "lone-surrogate": ("request_id", '"\\ud800"'),
    "nan-feature": ("features", '{"amount": NaN}'),
    "infinity-feature": ("features", '{"amount": -Infinity}'),
}
#: Where the field named differs from the field the raw value is written into.
NAMED_FIELD = {"nan-feature": "features.amount", "infinity-feature": "features.amount"}


def with_raw(items: list[dict[str, Any]], index: int, field: str, raw: str) -> bytes:
    """The JSON of `items` with the text `raw` as the value of `field` of item `index`."""
    items[index][field] = RAW
    return json.dumps(items).replace(f'"{RAW}"', raw).encode()


def test_values_json_cannot_carry_are_refused_with_a_4xx(
    client: Any, api_keys: dict[str, str], db: Database
) -> None:
    problems = {}
    for name, (field, raw) in RAW_VALUES.items():
        body = with_raw(factories.records(5), BAD_INDEX, field, raw)
        response = post_raw(client, api_keys["ingest"], body)
        if response.status_code == 422:
            named = NAMED_FIELD.get(name, field)
            problems[name] = refusal_problem(response, index=BAD_INDEX, field=named)
        elif response.status_code != 400 or not response.json()["detail"]:
            problems[name] = f"{response.status_code}: {response.text[:200]}"
        problems[name] = problems.get(name) or stored_problem(db)

    assert_all_refused(problems)


def test_a_trace_id_error_says_what_a_trace_id_must_be(
    client: Any, api_keys: dict[str, str]
) -> None:
    response = client.post(
        "/api/v1/records",
        json=batch_with(factories.record(trace_id="not-a-trace")),
        headers=bearer(api_keys["ingest"]),
    )

    assert_names(response, index=BAD_INDEX, field="trace_id")
    message = response.json()["errors"][0]["message"]
    assert "NUL" not in message, f"misleading message for a malformed trace_id: {message!r}"


def test_every_invalid_item_is_reported(
    client: Any, api_keys: dict[str, str], db: Database
) -> None:
    items = factories.records(6)
    items[1]["latency_ms"] = -5
    items[4]["status"] = "unknown"
    del items[4]["model"]

    response = client.post("/api/v1/records", json=items, headers=bearer(api_keys["ingest"]))

    assert response.status_code == 422, response.text
    reported = {(error["index"], error["field"]) for error in response.json()["errors"]}
    assert reported == {(1, "latency_ms"), (4, "status"), (4, "model")}
    assert not any(row_counts(db).values())


def test_an_invalid_ndjson_item_is_named_by_index_and_line(
    client: Any, api_keys: dict[str, str], db: Database
) -> None:
    items = factories.records(3)
    items[2]["latency_ms"] = "slow"
    lines = ndjson(items).split(b"\n")
    body = b"\n".join([lines[0], b"", lines[1], lines[2]]) + b"\n"

    response = post_raw(
        client, api_keys["ingest"], body, **{"Content-Type": "application/x-ndjson"}
    )

    assert response.status_code == 422, response.text
    (error,) = response.json()["errors"]
    assert (error["index"], error["line"], error["field"]) == (2, 4, "latency_ms")
    assert "line 4" in response.json()["detail"]
    assert not any(row_counts(db).values())


def test_an_undecodable_ndjson_line_is_named(
    client: Any, api_keys: dict[str, str], db: Database
) -> None:
    body = ndjson(factories.records(2)) + b'{"model": "fraud-scorer",\n'

    response = post_raw(
        client, api_keys["ingest"], body, **{"Content-Type": "application/x-ndjson"}
    )

    assert response.status_code == 400, response.text
    assert "line 3" in response.json()["detail"]
    assert not any(row_counts(db).values())


BAD_BODIES = {
    "not-json": (b"{not json", "application/json", {}, 400),
    "invalid-utf-8": (
        json_array(factories.records(2))[:-1] + b',{"model": "m\xff\xfe"}]',
        "application/json",
        {},
        400,
    ),
    "truncated-array": (json_array(factories.records(3))[:-10], "application/json", {}, 400),
    "empty": (b"", "application/json", {}, 400),
    "whitespace": (b" \n\t ", "application/x-ndjson", {}, 400),
    "empty-array": (b"[]", "application/json", {}, 422),
    "top-level-number": (b"5", "application/json", {}, 422),
    "top-level-string": (b'"records"', "application/json", {}, 422),
    "array-of-arrays": (b"[[1, 2]]", "application/json", {}, 422),
    "text-plain": (json_array(factories.records(2)), "text/plain", {}, 415),
    "form": (b"a=1", "application/x-www-form-urlencoded", {}, 415),
    "csv": (b"model,latency_ms\nm,1\n", "text/csv", {}, 415),
    "brotli": (json_array(factories.records(2)), "application/json", {"br": True}, 415),
    "gzip-garbage": (b"\x1f\x8b\x08\x00garbage", "application/json", {"gzip": True}, 400),
    "gzip-truncated": (
        gzip.compress(json_array(factories.records(50)))[:-20],
        "application/json",
        {"gzip": True},
        400,
    ),
    "gzip-header-but-plain-body": (
        json_array(factories.records(2)),
        "application/json",
        {"gzip": True},
        400,
    ),
}


def test_an_unreadable_body_gets_a_clear_4xx(
    client: Any, api_keys: dict[str, str], db: Database
) -> None:
    problems = {}
    for name, (body, content_type, flags, status) in BAD_BODIES.items():
        headers = {"Content-Type": content_type}
        if flags.get("gzip"):
            headers["Content-Encoding"] = "gzip"
        if flags.get("br"):
            headers["Content-Encoding"] = "br"
        response = post_raw(client, api_keys["ingest"], body, **headers)
        if response.status_code != status or not response.json().get("detail"):
            problems[name] = f"{response.status_code} (not {status}): {response.text[:200]}"
        problems[name] = problems.get(name) or stored_problem(db)

    assert_all_refused(problems)


# Invalid items of the other kinds: (path, batch of valid items with one bad at index 1, field).
OTHER_KINDS = {
    "label-null": ("/api/v1/labels", factories.label(label=None), "label"),
    "label-missing-request-id": (
        "/api/v1/labels",
        {"model": "fraud-scorer", "label": 1},
        "request_id",
    ),
    "label-bad-timestamp": ("/api/v1/labels", factories.label(timestamp="soon"), "timestamp"),
    "label-nul": ("/api/v1/labels", factories.label(request_id="r\x00"), "request_id"),
    "event-unknown-kind": ("/api/v1/events", factories.event(kind="reboot"), "kind"),
    "event-traffic-over-100": ("/api/v1/events", factories.event(traffic_pct=150), "traffic_pct"),
    "event-missing-timestamp": (
        "/api/v1/events",
        {"model": "fraud-scorer", "kind": "deploy"},
        "timestamp",
    ),
    "event-nul-description": ("/api/v1/events", factories.event(description="\x00"), "description"),
    "metric-value-word": ("/api/v1/metrics", factories.metric(value="high"), "value"),
    "metric-value-bool": ("/api/v1/metrics", factories.metric(value=True), "value"),
    "metric-value-huge": ("/api/v1/metrics", factories.metric(value=10**400), "value"),
    "metric-missing-host": (
        "/api/v1/metrics",
        {k: v for k, v in factories.metric().items() if k != "host"},
        "host",
    ),
    "metric-bad-timestamp": ("/api/v1/metrics", factories.metric(timestamp="noon"), "timestamp"),
}
VALID_ITEM = {
    "/api/v1/labels": factories.label(request_id="ok"),
    "/api/v1/events": factories.event(kind="config"),
    "/api/v1/metrics": factories.metric(resource="gpu1"),
}


def test_invalid_labels_events_and_metrics_are_named_and_not_stored(
    client: Any, api_keys: dict[str, str], db: Database
) -> None:
    problems = {}
    for name, (path, bad, field) in OTHER_KINDS.items():
        batch = [VALID_ITEM[path], bad, VALID_ITEM[path]]
        response = client.post(path, json=batch, headers=bearer(api_keys["ingest"]))
        problems[name] = refusal_problem(response, index=1, field=field) or stored_problem(db)

    assert_all_refused(problems)


def test_metric_values_must_be_finite(client: Any, api_keys: dict[str, str], db: Database) -> None:
    problems = {}
    for raw in ("NaN", "Infinity", "-Infinity", "1e400"):
        body = with_raw([factories.metric(), factories.metric(resource="gpu1")], 1, "value", raw)
        response = post_raw(client, api_keys["ingest"], body, path="/api/v1/metrics")
        if response.status_code == 422:
            problems[raw] = refusal_problem(response, index=1, field="value")
        elif response.status_code != 400:
            problems[raw] = f"{response.status_code}: {response.text[:200]}"
        problems[raw] = problems.get(raw) or stored_problem(db)

    assert_all_refused(problems)


def test_a_refused_batch_leaves_earlier_data_untouched(
    client: Any, api_keys: dict[str, str], db: Database
) -> None:
    key = api_keys["ingest"]
    client.post("/api/v1/records", json=factories.records(10), headers=bearer(key))
    before = row_counts(db)
    retry_with_new = factories.records(10) + factories.records(5, prefix="new")
    retry_with_new[12]["latency_ms"] = -1

    response = client.post("/api/v1/records", json=retry_with_new, headers=bearer(key))

    assert_names(response, index=12, field="latency_ms")
    assert row_counts(db) == before


def test_a_batch_over_the_item_limit_gets_413(
    db: Database, tmp_path: Path, api_keys: dict[str, str]
) -> None:
    with app_client(db, tmp_path, max_batch_records=10) as client:
        headers = bearer(api_keys["ingest"])
        too_many = client.post("/api/v1/records", json=factories.records(11), headers=headers)
        too_many_lines = post_raw(
            client,
            api_keys["ingest"],
            ndjson(factories.records(11)),
            **{"Content-Type": "application/x-ndjson"},
        )
        at_limit = client.post("/api/v1/records", json=factories.records(10), headers=headers)

    assert too_many.status_code == 413, too_many.text
    assert too_many_lines.status_code == 413, too_many_lines.text
    assert at_limit.status_code == 200, at_limit.text
    assert row_counts(db)["inference_records"] == 10
