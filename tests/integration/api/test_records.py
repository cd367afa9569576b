"""GET /api/v1/records: filters, newest-first keyset pagination, invalid cursors."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import orjson

from tests import factories
from tests.conftest import bearer

MODEL = "fraud-scorer"
T0 = factories.T0


def ingest(client: Any, key: str, items: list[dict[str, Any]]) -> None:
    response = client.post("/api/v1/records", json=items, headers=bearer(key))
    assert response.status_code == 200, response.text


def get_page(client: Any, key: str, **params: Any) -> dict[str, Any]:
    response = client.get("/api/v1/records", params={"model": MODEL, **params}, headers=bearer(key))
    assert response.status_code == 200, response.text
    return response.json()


def read_all(
    client: Any, key: str, cursor: str | None = None, **params: Any
) -> list[list[dict[str, Any]]]:
    """Every page from `cursor` (or the first page), following next_cursor to the end."""
    pages = []
    while True:
        extra = {"cursor": cursor} if cursor else {}
        page = get_page(client, key, **params, **extra)
        pages.append(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 100, "pagination does not end"


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["request_id"] for item in items]


def newest_first(items: list[dict[str, Any]]) -> list[str]:
    return ids(sorted(items, key=lambda item: item["timestamp"], reverse=True))


def test_pages_cover_every_record_once_newest_first(client: Any, api_keys: dict[str, str]) -> None:
    sent = factories.records(25)
    ingest(client, api_keys["ingest"], sent)

    pages = read_all(client, api_keys["read"], limit=10)
    exact_pages = read_all(client, api_keys["read"], limit=5)

    assert [len(page) for page in pages] == [10, 10, 5]
    assert [item["request_id"] for page in pages for item in page] == newest_first(sent)
    assert [len(page) for page in exact_pages] == [5] * 5, "no empty page after the last"


def test_records_with_equal_timestamps_are_paged_without_gaps_or_repeats(
    client: Any, api_keys: dict[str, str]
) -> None:
    sent = factories.records(15, spacing_seconds=0.0)
    ingest(client, api_keys["ingest"], sent)

    pages = read_all(client, api_keys["read"], limit=4)

    read = [rid for page in pages for rid in ids(page)]
    assert sorted(read) == sorted(ids(sent))
    assert len(read) == len(set(read))


def test_records_arriving_between_pages_neither_shift_nor_repeat_items(
    client: Any, api_keys: dict[str, str]
) -> None:
    sent = factories.records(30)
    ingest(client, api_keys["ingest"], sent)
    first = get_page(client, api_keys["read"], limit=10)
    newer = factories.records(5, prefix="newer", start=T0 + dt.timedelta(hours=1))
    older = factories.records(5, prefix="older", start=T0 - dt.timedelta(hours=1))
    ingest(client, api_keys["ingest"], newer + older)

    rest = read_all(client, api_keys["read"], limit=10, cursor=first["next_cursor"])

    read_after = [rid for page in rest for rid in ids(page)]
    assert read_after == newest_first(sent)[10:] + newest_first(older)


FILTERS = {
    "version": ({"model_version": "v2"}, lambda item: item["model_version"] == "v2"),
    "tag": ({"tag": "host:gpu-2"}, lambda item: item["tags"]["host"] == "gpu-2"),
    "tag-with-equals": ({"tag": "host=gpu-2"}, lambda item: item["tags"]["host"] == "gpu-2"),
    "two-tags": (
        {"tag": ["host:gpu-3", "zone:b"]},
        lambda item: item["tags"]["host"] == "gpu-3" and item["tags"].get("zone") == "b",
    ),
    "status": ({"status": "error"}, lambda item: item.get("status") == "error"),
    "window": (
        {"start": "2026-11-16T12:00:10Z", "end": "2026-11-16T12:00:30Z"},
        lambda item: "2026-11-16T12:00:10" <= item["timestamp"][:19] < "2026-11-16T12:00:30",
    ),
    "epoch-window": (
        {"start": str(int(T0.timestamp()) + 10), "end": str(int(T0.timestamp()) + 30)},
        lambda item: "2026-11-16T12:00:10" <= item["timestamp"][:19] < "2026-11-16T12:00:30",
    ),
    "version-status-window": (
        {"model_version": "v1", "status": "ok", "start": "2026-11-16T12:00:20Z"},
        lambda item: (
            item["model_version"] == "v1"
            and item.get("status", "ok") == "ok"
            and item["timestamp"][:19] >= "2026-11-16T12:00:20"
        ),
    ),
}


def test_filters_select_exactly_the_matching_records(client: Any, api_keys: dict[str, str]) -> None:
    sent = factories.records(60)
    for i, item in enumerate(sent):
        item["model_version"] = "v2" if i % 3 == 0 else "v1"
        if i % 4 == 0:
            item["status"] = "error"
        if i % 2 == 0:
            item["tags"]["zone"] = "b"
    other_model = factories.records(10, prefix="other", model="ranker")
    ingest(client, api_keys["ingest"], sent + other_model)

    wrong = {}
    for name, (params, keep) in FILTERS.items():
        pages = read_all(client, api_keys["read"], limit=7, **params)
        expected = newest_first([item for item in sent if keep(item)])
        assert expected, f"{name} should match something"
        read = [rid for page in pages for rid in ids(page)]
        if read != expected:
            wrong[name] = f"read {read}, expected {expected}"

    assert not wrong, wrong


def test_labels_are_returned_with_their_records(client: Any, api_keys: dict[str, str]) -> None:
    ingest(
        client,
        api_keys["ingest"],
        [*factories.records(3), factories.record(request_id="x", label=0)],
    )
    client.post(
        "/api/v1/labels",
        json=[factories.label(request_id="req-1", label="fraud")],
        headers=bearer(api_keys["ingest"]),
    )

    labels = {
        item["request_id"]: item["label"] for item in get_page(client, api_keys["read"])["items"]
    }

    assert labels == {"req-0": None, "req-1": "fraud", "req-2": None, "x": 0}


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


INVALID_CURSORS = {
    "garbage": "not a cursor!",
    "empty": "",
    "not-base64-json": _b64(b"hello"),
    "json-object": _b64(b'{"t": 1}'),
    "wrong-arity": _b64(b'["2026-11-16T12:00:00+00:00"]'),
    "naive-time": _b64(b'["2026-11-16T12:00:00", 3]'),
    "bad-time": _b64(b'["yesterday", 3]'),
    "id-not-int": _b64(b'["2026-11-16T12:00:00+00:00", "3"]'),
    "id-huge": _b64(b'["2026-11-16T12:00:00+00:00", 1180591620717411303424]'),
    "very-long": "A" * 10_000,
}


def test_an_invalid_cursor_is_400(client: Any, api_keys: dict[str, str]) -> None:
    ingest(client, api_keys["ingest"], factories.records(3))
    wrong = {}
    for name, cursor in INVALID_CURSORS.items():
        response = client.get(
            "/api/v1/records",
            params={"model": MODEL, "cursor": cursor},
            headers=bearer(api_keys["read"]),
        )
        if response.status_code != 400 or "cursor" not in response.json()["detail"]:
            wrong[name] = f"{response.status_code}: {response.text[:200]}"

    assert not wrong, wrong


def test_a_cursor_with_an_id_beyond_64_bits_is_400(client: Any, api_keys: dict[str, str]) -> None:
    ingest(client, api_keys["ingest"], factories.records(3))
    cursor = _b64(orjson.dumps(["2026-11-16T12:00:00+00:00", 2**63]))

    response = client.get(
        "/api/v1/records",
        params={"model": MODEL, "cursor": cursor},
        headers=bearer(api_keys["read"]),
    )

    assert response.status_code == 400, response.text
    assert "cursor" in response.json()["detail"]


BAD_PARAMETERS = {
    "no-model": {},
    "limit-zero": {"model": MODEL, "limit": 0},
    "limit-too-big": {"model": MODEL, "limit": 1001},
    "limit-word": {"model": MODEL, "limit": "many"},
    "unknown-status": {"model": MODEL, "status": "warn"},
    "tag-without-value": {"model": MODEL, "tag": "host"},
    "bad-start": {"model": MODEL, "start": "yesterday"},
    "bad-end": {"model": MODEL, "end": "2026-02-30T00:00:00Z"},
    "nul-in-model": {"model": "fraud\x00scorer"},
    "nul-in-version": {"model": MODEL, "model_version": "v\x001"},
    "nul-in-tag-key": {"model": MODEL, "tag": "ho\x00st:gpu-1"},
    "nul-in-tag-value": {"model": MODEL, "tag": "host:gpu\x001"},
    "nul-in-cursor": {"model": MODEL, "cursor": "abc\x00"},
}


def test_bad_parameters_are_422(client: Any, api_keys: dict[str, str]) -> None:
    ingest(client, api_keys["ingest"], factories.records(3))
    wrong = {}
    for name, params in BAD_PARAMETERS.items():
        response = client.get("/api/v1/records", params=params, headers=bearer(api_keys["read"]))
        if response.status_code != 422 or not isinstance(response.json()["detail"], str):
            wrong[name] = f"{response.status_code}: {response.text[:200]}"

    assert not wrong, wrong
