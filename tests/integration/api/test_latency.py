"""GET /api/v1/models/{model}/latency: percentile series per bucket, by version, 'all' or a tag.

Every point is checked against the records that fall in its bucket: counts exactly,
percentiles within 1% of numpy's "lower" quantile.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest

from tests import factories
from tests.conftest import bearer
from tests.integration.api.helpers import lower_percentile

MODEL = "fraud-scorer"
T0 = factories.T0
PATH = f"/api/v1/models/{MODEL}/latency"
TEN_MINUTES = {"start": T0.isoformat(), "end": (T0 + dt.timedelta(minutes=10)).isoformat()}


@pytest.fixture
def sent(client: Any, api_keys: dict[str, str]) -> list[dict[str, Any]]:
    """Ten minutes of two versions (v2 slower, every 5th v2 request an error), ingested."""
    v1 = factories.records(600, seed=3, prefix="v1")
    v2 = factories.records(300, seed=4, prefix="v2", spacing_seconds=2.0, model_version="v2")
    for i, item in enumerate(v2):
        item["latency_ms"] = round(item["latency_ms"] * 2 + 5, 3)
        if i % 5 == 0:
            item["status"] = "error"
    items = v1 + v2
    for i, item in enumerate(items):
        item["tags"]["gpu_type"] = "a100" if i % 3 else "h100"
    response = client.post("/api/v1/records", json=items, headers=bearer(api_keys["ingest"]))
    assert response.status_code == 200, response.text
    return items


def get_series(client: Any, key: str, **params: Any) -> dict[str, Any]:
    response = client.get(PATH, params=params, headers=bearer(key))
    assert response.status_code == 200, response.text
    return response.json()


def expected_points(
    items: list[dict[str, Any]],
    series_of: Callable[[dict[str, Any]], str],
    bucket_seconds: int,
    origin: dt.datetime = T0,
) -> dict[tuple[str, dt.datetime], list[dict[str, Any]]]:
    """The records of each (series, bucket start)."""
    groups: dict[tuple[str, dt.datetime], list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        offset = (dt.datetime.fromisoformat(item["timestamp"]) - origin).total_seconds()
        start = origin + dt.timedelta(seconds=offset // bucket_seconds * bucket_seconds)
        groups[(series_of(item), start)].append(item)
    return groups


def assert_series(
    body: dict[str, Any],
    expected: dict[tuple[str, dt.datetime], list[dict[str, Any]]],
    percentiles: tuple[float, ...] = (50, 95, 99),
) -> None:
    reported = {
        (series["key"], dt.datetime.fromisoformat(point["t"])): point
        for series in body["series"]
        for point in series["points"]
    }
    assert sorted(reported) == sorted(expected)
    for where, items in expected.items():
        point = reported[where]
        latencies = [item["latency_ms"] for item in items]
        num_errors = sum(item.get("status") == "error" for item in items)
        assert point["num_requests"] == len(items), where
        assert point["num_errors"] == num_errors, where
        assert point["error_rate"] == pytest.approx(num_errors / len(items)), where
        assert point["mean_ms"] == pytest.approx(sum(latencies) / len(latencies), rel=1e-9)
        for percentile in percentiles:
            column = f"p{percentile:g}".replace(".", "_")
            expected_ms = lower_percentile(latencies, percentile)
            assert point[column] == pytest.approx(expected_ms, rel=0.01), (where, column)


def test_series_by_version(client: Any, api_keys: dict[str, str], sent: list[Any]) -> None:
    body = get_series(client, api_keys["read"], bucket="5m", **TEN_MINUTES)

    assert body["by"] == "model_version"
    assert body["bucket_seconds"] == 300
    assert [series["key"] for series in body["series"]] == ["v1", "v2"]
    assert_series(body, expected_points(sent, lambda item: item["model_version"], 300))


def test_series_of_all_versions_and_by_tag(
    client: Any, api_keys: dict[str, str], sent: list[Any]
) -> None:
    merged = get_series(client, api_keys["read"], bucket="5m", by="all", **TEN_MINUTES)
    by_host = get_series(client, api_keys["read"], bucket="5m", by="host", **TEN_MINUTES)
    by_gpu = get_series(client, api_keys["read"], bucket="5m", by="gpu_type", **TEN_MINUTES)
    by_absent_tag = get_series(client, api_keys["read"], bucket="5m", by="segment", **TEN_MINUTES)

    assert [series["key"] for series in merged["series"]] == ["all"]
    assert_series(merged, expected_points(sent, lambda item: "all", 300))
    assert by_host["source"] == "rollups"
    assert_series(by_host, expected_points(sent, lambda item: item["tags"]["host"], 300))
    assert by_gpu["source"] == "records", "gpu_type is not a rollup tag"
    assert_series(by_gpu, expected_points(sent, lambda item: item["tags"]["gpu_type"], 300))
    assert by_absent_tag["series"] == []


def test_one_version_only(client: Any, api_keys: dict[str, str], sent: list[Any]) -> None:
    v2 = [item for item in sent if item["model_version"] == "v2"]

    by_version = get_series(
        client, api_keys["read"], bucket="5m", model_version="v2", **TEN_MINUTES
    )
    merged = get_series(
        client, api_keys["read"], bucket="5m", by="all", model_version="v2", **TEN_MINUTES
    )

    assert_series(by_version, expected_points(v2, lambda item: "v2", 300))
    assert_series(merged, expected_points(v2, lambda item: "all", 300))


def test_chosen_percentiles(client: Any, api_keys: dict[str, str], sent: list[Any]) -> None:
    body = get_series(
        client, api_keys["read"], bucket="10m", by="all", percentile=[90, 99.9], **TEN_MINUTES
    )

    assert body["percentiles"] == [90, 99.9]
    point = body["series"][0]["points"][0]
    assert "p50" not in point
    assert_series(body, expected_points(sent, lambda item: "all", 600), percentiles=(90, 99.9))


def test_bucket_lengths(client: Any, api_keys: dict[str, str], sent: list[Any]) -> None:
    for bucket, seconds in (("1m", 60), ("120", 120), ("300s", 300), ("1h", 3600)):
        body = get_series(client, api_keys["read"], bucket=bucket, **TEN_MINUTES)

        assert body["bucket_seconds"] == seconds, bucket
        assert_series(body, expected_points(sent, lambda item: item["model_version"], seconds))


def test_the_window_selects_whole_buckets(
    client: Any, api_keys: dict[str, str], sent: list[Any]
) -> None:
    start = T0 + dt.timedelta(minutes=5)
    end = T0 + dt.timedelta(minutes=10)
    inside = [item for item in sent if start <= dt.datetime.fromisoformat(item["timestamp"]) < end]

    body = get_series(
        client,
        api_keys["read"],
        bucket="5m",
        start=str(int(start.timestamp())),
        end=end.isoformat(),
    )

    assert dt.datetime.fromisoformat(body["start"]) == start
    assert dt.datetime.fromisoformat(body["end"]) == end
    assert_series(body, expected_points(inside, lambda item: item["model_version"], 300, start))


def test_buckets_without_traffic_are_left_out(client: Any, api_keys: dict[str, str]) -> None:
    early = factories.records(30, prefix="early")
    late = factories.records(30, prefix="late", start=T0 + dt.timedelta(minutes=20))
    client.post("/api/v1/records", json=early + late, headers=bearer(api_keys["ingest"]))

    body = get_series(
        client,
        api_keys["read"],
        bucket="5m",
        start=T0.isoformat(),
        end=(T0 + dt.timedelta(minutes=30)).isoformat(),
    )

    (series,) = body["series"]
    assert [point["t"][:16] for point in series["points"]] == [
        "2026-11-16T12:00",
        "2026-11-16T12:20",
    ]
    assert_series(body, expected_points(early + late, lambda item: "v1", 300))


BAD_PARAMETERS = {
    "bucket-not-minutes": {"bucket": "90s"},
    "bucket-under-a-minute": {"bucket": "30"},
    "bucket-zero": {"bucket": "0"},
    "bucket-word": {"bucket": "abc"},
    "bucket-negative": {"bucket": "-5m"},
    "percentile-over-100": {"percentile": "101"},
    "percentile-negative": {"percentile": "-1"},
    "percentile-word": {"percentile": "abc"},
    "percentile-nan": {"percentile": "nan"},
    "start-after-end": {"start": "2026-11-16T13:00:00Z", "end": "2026-11-16T12:00:00Z"},
    "start-word": {"start": "not a time"},
    "too-many-buckets": {"start": "1971-01-01T00:00:00Z", "bucket": "1m"},
    "end-of-time": {"start": "9999-12-31T23:00:00Z", "end": "9999-12-31T23:59:59Z"},
    "nul-in-by": {"by": "ho\x00st"},
    "nul-in-version": {"model_version": "v\x001"},
}


def test_bad_parameters_are_422(client: Any, api_keys: dict[str, str]) -> None:
    wrong = {}
    for name, params in BAD_PARAMETERS.items():
        response = client.get(
            PATH, params={**TEN_MINUTES, **params}, headers=bearer(api_keys["read"])
        )
        if response.status_code != 422 or not isinstance(response.json()["detail"], str):
            wrong[name] = f"{response.status_code}: {response.text[:200]}"
    nul_model = client.get(
        "/api/v1/models/fraud%00scorer/latency",
        params=TEN_MINUTES,
        headers=bearer(api_keys["read"]),
    )

    assert not wrong, wrong
    assert nul_model.status_code == 422, nul_model.text
