"""/api/v1/profiles over HTTP on both databases: upload (plain, gzipped, Content-Encoding),
duplicates, refusals that store nothing, listing, operators, steps, timeline, raw file, diff."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from observe.db.engine import Database
from observe.db.models import (
    ProfileChunk,
    ProfileOperator,
    ProfilerTrace,
    ProfileStep,
    ProfileTimelineChunk,
)
from tests.conftest import bearer
from tests.integration.api.helpers import app_client

DATA = Path(__file__).parents[2] / "data"
V1_GZ = (DATA / "profile_v1.json.gz").read_bytes()
V2_GZ = (DATA / "profile_v2.json.gz").read_bytes()
V1_PLAIN = gzip.decompress(V1_GZ)
TABLES = (ProfilerTrace, ProfileChunk, ProfileOperator, ProfileStep, ProfileTimelineChunk)


def stored_rows(db: Database) -> int:
    with db.sessions() as session:
        return sum(session.scalar(select(func.count()).select_from(t)) or 0 for t in TABLES)


def upload(
    client: Any,
    keys: dict[str, str],
    body: bytes,
    *,
    version: str = "v1",
    headers: dict[str, str] | None = None,
    **params: str,
) -> Any:
    query = {"model": "fraud-scorer", "model_version": version, "host": "gpu-1", **params}
    return client.post(
        "/api/v1/profiles",
        params=query,
        content=body,
        headers={**bearer(keys["ingest"]), **(headers or {})},
    )


def read(client: Any, keys: dict[str, str], path: str, **params: Any) -> Any:
    response = client.get(path, params=params, headers=bearer(keys["read"]))
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (V1_GZ, {"Content-Type": "application/gzip"}),
        (V1_PLAIN, {"Content-Type": "application/json"}),
        (gzip.compress(V1_PLAIN), {"Content-Type": "application/json", "Content-Encoding": "gzip"}),
        (V1_PLAIN, {}),
    ],
    ids=["gzip-file", "plain", "content-encoding", "no-content-type"],
)
def test_upload_stores_the_trace(
    client: Any, api_keys: dict[str, str], body: bytes, headers: dict[str, str]
) -> None:
    response = upload(client, api_keys, body, headers=headers, file_name="v1.json.gz")

    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["duplicate"] is False
    profile = answer["profile"]
    assert (profile["num_operators"], profile["num_steps"], profile["num_bytes"]) == (
        12,
        5,
        len(V1_PLAIN),
    )
    assert profile["file_name"] == "v1.json.gz"
    assert (
        read(client, api_keys, f"/api/v1/profiles/{profile['id']}")["sha256"] == (profile["sha256"])
    )


def test_the_same_file_twice_is_stored_once_and_the_answer_says_so(
    client: Any, api_keys: dict[str, str], db: Database
) -> None:
    first = upload(client, api_keys, V1_GZ)
    rows = stored_rows(db)
    second = upload(client, api_keys, V1_PLAIN, version="v9")

    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["duplicate"] is True
    assert second.json()["profile"]["id"] == first.json()["profile"]["id"]
    assert second.json()["profile"]["model_version"] == "v1"
    assert stored_rows(db) == rows


def test_captured_at_given_or_from_the_trace(client: Any, api_keys: dict[str, str]) -> None:
    given = upload(client, api_keys, V1_GZ, captured_at="2026-11-20T14:05:00Z").json()
    derived = upload(client, api_keys, V2_GZ, version="v2").json()

    assert given["profile"]["captured_at"] == "2026-11-20T14:05:00Z"
    assert derived["profile"]["captured_at"].startswith("2026-")


@pytest.mark.parametrize(
    ("body", "headers", "status", "message"),
    [
        (b"", {}, 422, "empty"),
        (b"not json at all", {}, 422, "not JSON"),
        (V1_PLAIN[: len(V1_PLAIN) // 2], {}, 422, "truncated"),
        (V1_GZ[:-100], {}, 422, "truncated"),
        (b'{"traceEvents": []}', {}, 422, "no events"),
        (b'{"traceEvents": [1]}', {}, 422, "not a JSON object"),
        (b'[{"ph": "X", "name": "op", "ts": "x", "dur": 1}]', {}, 422, "'ts' is not a number"),
        (V1_PLAIN, {"Content-Type": "multipart/form-data; boundary=x"}, 415, "--data-binary"),
        (V1_PLAIN, {"Content-Encoding": "br"}, 415, "Content-Encoding"),
        (gzip.compress(V1_PLAIN)[:-50], {"Content-Encoding": "gzip"}, 400, "truncated"),
    ],
    ids=[
        "empty",
        "not-json",
        "truncated",
        "truncated-gzip",
        "no-events",
        "wrong-shape",
        "bad-ts",
        "multipart",
        "brotli",
        "truncated-encoding",
    ],
)
def test_bad_uploads_are_refused_and_store_nothing(
    client: Any,
    api_keys: dict[str, str],
    db: Database,
    body: bytes,
    headers: dict[str, str],
    status: int,
    message: str,
) -> None:
    response = upload(client, api_keys, body, headers=headers)

    assert response.status_code == status, response.text
    assert message in response.json()["detail"]
    assert stored_rows(db) == 0


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"model": ""}, "model"),
        ({"host": "a\x00b"}, "host"),
        ({"captured_at": "soon"}, "captured_at"),
    ],
)
def test_bad_parameters_are_refused(
    client: Any, api_keys: dict[str, str], db: Database, params: dict[str, str], field: str
) -> None:
    response = upload(client, api_keys, V1_GZ, **params)

    assert response.status_code == 422
    assert field in response.json()["detail"]
    assert stored_rows(db) == 0


def test_the_size_limit_counts_decompressed_bytes(
    db: Database, tmp_path: Path, api_keys: dict[str, str]
) -> None:
    limit_mb = (len(V1_PLAIN) - 1) / (1024 * 1024)
    with app_client(db, tmp_path, max_profile_mb=limit_mb) as client:
        compressed = upload(client, api_keys, V1_GZ)  # 3 KB on the wire, 47 KB inside
        plain = upload(client, api_keys, V1_PLAIN)
        bomb = upload(client, api_keys, gzip.compress(b" " * 10_000_000))

    for response in (compressed, plain, bomb):
        assert response.status_code == 413, response.text
        assert "after decompression" in response.json()["detail"]
    assert stored_rows(db) == 0


def test_uploads_need_the_ingest_scope_and_reads_the_read_scope(
    client: Any, api_keys: dict[str, str]
) -> None:
    refused = client.post(
        "/api/v1/profiles",
        params={"model": "m", "model_version": "v", "host": "h"},
        content=V1_GZ,
        headers=bearer(api_keys["read"]),
    )
    profile_id = upload(client, api_keys, V1_GZ).json()["profile"]["id"]
    ingest_reading = client.get(
        f"/api/v1/profiles/{profile_id}/operators", headers=bearer(api_keys["ingest"])
    )

    assert refused.status_code == 403
    assert ingest_reading.status_code == 403


def test_list_filters_by_model_version_host_and_time(client: Any, api_keys: dict[str, str]) -> None:
    upload(client, api_keys, V1_GZ, captured_at="2026-11-20T10:00:00Z")
    upload(client, api_keys, V2_GZ, version="v2", host="gpu-2", captured_at="2026-11-20T12:00:00Z")

    def versions(**params: str) -> list[str]:
        items = read(client, api_keys, "/api/v1/profiles", **params)["items"]
        return [item["model_version"] for item in items]

    assert versions() == ["v2", "v1"]
    assert versions(model_version="v1") == ["v1"]
    assert versions(host="gpu-2") == ["v2"]
    assert versions(start="2026-11-20T11:00:00Z") == ["v2"]
    assert versions(end="2026-11-20T11:00:00Z") == ["v1"]
    assert versions(model="other") == []


def test_operators_sorted_filtered_and_limited(client: Any, api_keys: dict[str, str]) -> None:
    profile_id = upload(client, api_keys, V2_GZ, version="v2").json()["profile"]["id"]
    path = f"/api/v1/profiles/{profile_id}/operators"

    cpu = read(client, api_keys, path, category="cpu_op", limit=3)["items"]
    by_count = read(client, api_keys, path, sort="count")["items"]

    assert [op["name"] for op in cpu] == [
        "aten::addmm",
        "aten::native_layer_norm",
        "aten::clamp_min",
    ]
    assert cpu[0]["count"] == 8
    assert cpu[0]["mean_us"] == pytest.approx(cpu[0]["total_us"] / 8)
    assert cpu[0]["input_shapes"][0]["count"] == 4
    assert by_count[0]["count"] == 16
    bad_sort = client.get(path, params={"sort": "speed"}, headers=bearer(api_keys["read"]))
    assert bad_sort.status_code == 422


def test_steps_and_the_timeline_of_one_step(client: Any, api_keys: dict[str, str]) -> None:
    profile_id = upload(client, api_keys, V2_GZ, version="v2").json()["profile"]["id"]
    steps = read(client, api_keys, f"/api/v1/profiles/{profile_id}/steps")["items"]
    timeline = read(client, api_keys, f"/api/v1/profiles/{profile_id}/timeline", step=2)
    short = read(client, api_keys, f"/api/v1/profiles/{profile_id}/timeline", step=2, limit=3)

    assert [step["step"] for step in steps] == [1, 2, 3, 4]
    assert steps[0]["self_us_by_category"]["cpu_op"] > 0
    step = steps[1]
    assert timeline["start_us"] == pytest.approx(step["start_us"])
    assert timeline["end_us"] == pytest.approx(steps[2]["start_us"])
    names = [event["name"] for event in timeline["events"]]
    assert names.count("aten::addmm") == 2
    assert "aten::native_layer_norm" in names
    assert timeline["truncated"] is False
    assert [e["start_us"] for e in timeline["events"]] == sorted(
        e["start_us"] for e in timeline["events"]
    )
    assert short["truncated"] is True
    assert len(short["events"]) == 3
    longest = sorted((e["duration_us"] for e in timeline["events"]), reverse=True)[:3]
    assert sorted((e["duration_us"] for e in short["events"]), reverse=True) == longest


def test_timeline_of_a_time_range_and_its_refusals(client: Any, api_keys: dict[str, str]) -> None:
    profile_id = upload(client, api_keys, V1_GZ).json()["profile"]["id"]
    path = f"/api/v1/profiles/{profile_id}/timeline"
    headers = bearer(api_keys["read"])

    whole = read(client, api_keys, path, limit=10_000)
    early = read(client, api_keys, path, start_us=0, end_us=50)

    assert len(whole["events"]) == whole["num_events_in_range"] == 116
    assert all(e["start_us"] < 50 for e in early["events"])
    assert client.get(path, params={"step": 99}, headers=headers).status_code == 404
    both = client.get(path, params={"step": 1, "end_us": 5}, headers=headers)
    assert both.status_code == 422
    backwards = client.get(path, params={"start_us": 9, "end_us": 5}, headers=headers)
    assert backwards.status_code == 422


def test_raw_download_is_the_uploaded_file_gzipped(client: Any, api_keys: dict[str, str]) -> None:
    profile_id = upload(client, api_keys, V1_PLAIN, file_name="run 7.json").json()["profile"]["id"]
    response = client.get(f"/api/v1/profiles/{profile_id}/raw", headers=bearer(api_keys["read"]))

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/gzip"
    assert 'filename="run_7.json.gz"' in response.headers["content-disposition"]
    assert zlib.decompress(response.content, 31) == V1_PLAIN


def test_diff_ranks_the_changed_operator_first(client: Any, api_keys: dict[str, str]) -> None:
    base = upload(client, api_keys, V1_GZ).json()["profile"]["id"]
    target = upload(client, api_keys, V2_GZ, version="v2").json()["profile"]["id"]

    diff = read(client, api_keys, "/api/v1/profiles/diff", base=base, target=target)

    assert diff["per_step"] is True
    assert "5 steps" in diff["note"]
    assert "4" in diff["note"]
    first = diff["operators"][0]
    assert (first["name"], first["status"]) == ("aten::addmm", "changed")
    assert first["base_count"] == first["target_count"] == 2.0  # two linear layers per step
    assert first["delta_self_us"] == pytest.approx(first["target_self_us"] - first["base_self_us"])
    assert "aten::native_layer_norm" in diff["new_operators"]
    assert diff["delta_self_us"] > 0
    reverse = read(client, api_keys, "/api/v1/profiles/diff", base=target, target=base)
    assert "aten::native_layer_norm" in reverse["vanished_operators"]
    assert reverse["operators"][-1]["name"] == "aten::addmm"


def test_unknown_profiles_are_404(client: Any, api_keys: dict[str, str]) -> None:
    headers = bearer(api_keys["read"])
    for path in (
        "/api/v1/profiles/99",
        "/api/v1/profiles/99/operators",
        "/api/v1/profiles/99/steps",
        "/api/v1/profiles/99/timeline",
        "/api/v1/profiles/99/raw",
        "/api/v1/profiles/99999999999999999999",
    ):
        response = client.get(path, headers=headers)
        assert response.status_code in (404, 422), path
        assert response.status_code == 404 or "99999" in path
    missing = client.get("/api/v1/profiles/diff", params={"base": 1, "target": 2}, headers=headers)
    assert missing.status_code == 404
