"""Write the small fixture files in tests/data. Run from the repository root:

    .venv/bin/python -m tests.data.make_fixtures

The record files hold the same 20 inference records in every format, so the decoders can be
checked against each other: one record has a missing feature (null in JSON, an empty cell in
CSV, NaN in Parquet), one has no `region` tag, and the numeric `zone` tag must come out as a
string. Timestamps are epoch seconds there, so every format decodes them to the same value.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

DATA = Path(__file__).parent
T0_EPOCH = 1_794_830_400  # 2026-11-16T12:00:00Z
NUM_RECORDS = 20
MISSING_AMOUNT_INDEX = 5
NO_REGION_INDEX = 6
ERROR_INDEX = 7
FEATURES = ("amount", "country", "card_present", "num_tx")
TAGS = ("host", "region", "zone")


def make_records() -> list[dict[str, Any]]:
    records = []
    for i in range(NUM_RECORDS):
        record: dict[str, Any] = {
            "model": "fraud-scorer",
            "model_version": "v1" if i < 10 else "v2",
            "timestamp": T0_EPOCH + 60 * i,
            "request_id": f"req-{i}",
            "latency_ms": round(10.0 + 1.5 * i, 1),
            "status": "error" if i == ERROR_INDEX else "ok",
            "features": {
                "amount": None if i == MISSING_AMOUNT_INDEX else round(5.25 * (i + 1), 2),
                "country": ["DE", "FR", "US"][i % 3],
                "card_present": i % 2 == 0,
                "num_tx": i % 4,
            },
            "prediction": round(0.05 * (i % 10), 2),
            "tags": {"host": f"gpu-{i % 3 + 1}", "region": "eu-west", "zone": i % 2 + 1},
        }
        if i == ERROR_INDEX:
            record["error"] = "feature store timed out"
        if i % 4 == 0:
            record["label"] = int(i % 8 == 0)
        if i == NO_REGION_INDEX:
            del record["tags"]["region"]
        records.append(record)
    return records


def as_json_record(record: dict[str, Any]) -> dict[str, Any]:
    """The record as a client sends it: tag values are strings."""
    return {**record, "tags": {k: str(v) for k, v in record["tags"].items()}}


def dotted_columns(records: list[dict[str, Any]], *, missing: Any) -> dict[str, list[Any]]:
    """Flat columns with features.x and tags.y, the shape pandas.json_normalize writes."""
    flat = ("model", "model_version", "timestamp", "request_id", "latency_ms", "status", "error")
    columns: dict[str, list[Any]] = {name: [r.get(name) for r in records] for name in flat}
    for name in FEATURES:
        values = [r["features"][name] for r in records]
        columns[f"features.{name}"] = [missing if v is None else v for v in values]
    columns["prediction"] = [r["prediction"] for r in records]
    columns["label"] = [r.get("label") for r in records]
    for name in TAGS:
        columns[f"tags.{name}"] = [r["tags"].get(name) for r in records]
    return columns


def write_jsonl(path: Path, items: list[Any]) -> None:
    path.write_bytes(b"".join(orjson.dumps(item) + b"\n" for item in items))


def write_records(records: list[dict[str, Any]]) -> None:
    json_records = [as_json_record(r) for r in records]
    write_jsonl(DATA / "records.jsonl", json_records)
    (DATA / "records.json").write_bytes(orjson.dumps(json_records, option=orjson.OPT_INDENT_2))
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as handle:
        handle.write((DATA / "records.jsonl").read_bytes())
    (DATA / "records.jsonl.gz").write_bytes(buffer.getvalue())
    pa_csv.write_csv(
        pa.table(dotted_columns(records, missing=None)), DATA / "records.csv", _CSV_OPTIONS
    )
    pq.write_table(
        pa.table(dotted_columns(records, missing=float("nan"))), DATA / "records.parquet"
    )
    pq.write_table(nested_table(records), DATA / "records_nested.parquet")


def nested_table(records: list[dict[str, Any]]) -> pa.Table:
    """Features as a struct column and tags as a map column."""
    columns = dotted_columns(records, missing=float("nan"))
    features = pa.StructArray.from_arrays(
        [pa.array(columns.pop(f"features.{name}")) for name in FEATURES], names=list(FEATURES)
    )
    tags = [[(k, str(v)) for k, v in r["tags"].items()] for r in records]
    for name in TAGS:
        columns.pop(f"tags.{name}")
    table = pa.table(columns)
    table = table.append_column("features", features)
    return table.append_column("tags", pa.array(tags, type=pa.map_(pa.string(), pa.string())))


_CSV_OPTIONS = pa_csv.WriteOptions(quoting_style="needed")


def write_records_with_errors() -> None:
    good = [
        as_json_record({**make_records()[0], "request_id": f"err-{i}", "model": "error-model"})
        for i in range(3)
    ]
    bad_latency = {**good[0], "request_id": "err-bad-latency", "latency_ms": -5}
    no_request_id = {k: v for k, v in good[0].items() if k != "request_id"}
    lines = [
        orjson.dumps(good[0]),
        b"",
        b'{"model": "error-model", "request_id": ',
        orjson.dumps(good[1]),
        b"[1, 2, 3]",
        orjson.dumps(bad_latency),
        orjson.dumps(no_request_id),
        orjson.dumps(good[2]),
    ]
    (DATA / "records_with_errors.jsonl").write_bytes(b"\n".join(lines) + b"\n")


def write_labels() -> None:
    labels = [
        {
            "model": "fraud-scorer",
            "request_id": f"req-{i}",
            "label": i % 2,
            "timestamp": "2026-11-17T08:00:00Z",
        }
        for i in range(1, 11)
    ]
    write_jsonl(DATA / "labels.jsonl", labels)


def write_events() -> None:
    deploy = {"timestamp": "2026-11-16T12:10:00Z", "model": "fraud-scorer", "kind": "deploy"}
    events = [
        {**deploy, "timestamp": "2026-11-16T11:00:00Z", "kind": "config", "model_version": "v1"},
        {
            **deploy,
            "kind": "canary",
            "model_version": "v2",
            "traffic_pct": 10,
            "tags": {"region": "eu-west"},
        },
        {**deploy, "model_version": "v2", "traffic_pct": 100, "description": "full rollout"},
        # 12:15 at UTC+1 is 11:15 UTC: offsets are honoured.
        {**deploy, "timestamp": "2026-11-16T12:15:00+01:00", "kind": "incident"},
    ]
    write_jsonl(DATA / "events.jsonl", events)


def write_metrics() -> None:
    rows: dict[str, list[Any]] = {
        "timestamp": [],
        "host": [],
        "resource": [],
        "name": [],
        "value": [],
        "tags.gpu_model": [],
    }
    for minute in range(3):
        for host in ("gpu-1", "gpu-2"):
            for name, value in (("gpu_utilization_pct", 60.0), ("gpu_temperature_c", 55.0)):
                rows["timestamp"].append(f"2026-11-16T12:{minute:02d}:00Z")
                rows["host"].append(host)
                rows["resource"].append("gpu0")
                rows["name"].append(name)
                rows["value"].append(value + minute + (5 if host == "gpu-2" else 0))
                rows["tags.gpu_model"].append("H100")
    pa_csv.write_csv(pa.table(rows), DATA / "metrics.csv", _CSV_OPTIONS)


def main() -> None:
    write_records(make_records())
    write_records_with_errors()
    write_labels()
    write_events()
    write_metrics()


if __name__ == "__main__":
    main()
