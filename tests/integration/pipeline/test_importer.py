"""observe.pipeline.importer: files of every format stored in batches, bad rows set aside."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from collectors.files import FileFormatError, Row, TableChunk, read_tables, table_rows
from observe.config import Settings
from observe.db.engine import Database
from observe.db.models import Base, Event, InferenceRecord, Label, LatencyRollup, MetricSample
from observe.pipeline.importer import import_file
from observe.pipeline.writer import BatchKind
from observe.schemas.common import describe_error, simplify_errors
from observe.schemas.records import InferenceRecordIn
from tests.conftest import bearer
from tests.factories import T0, event, label, metric, record, record_file_table, records

ROLLUP_TAGS = ("host",)


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    lines = [row if isinstance(row, bytes) else orjson.dumps(row) for row in rows]
    data = b"\n".join(lines) + b"\n"
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def run(db: Database, path: Path, kind: BatchKind = BatchKind.RECORDS, **options: Any) -> Any:
    options.setdefault("rejects_path", path.with_name(path.name + ".rejects.jsonl"))
    return import_file(db, path, kind, rollup_tags=ROLLUP_TAGS, **options)


def stored(db: Database) -> dict[str, InferenceRecord]:
    with db.sessions() as session:
        return {r.request_id: r for r in session.scalars(select(InferenceRecord))}


def count(db: Database, model: type) -> int:
    with db.sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def read_rejects(path: str | None) -> list[dict[str, Any]]:
    assert path is not None
    return [orjson.loads(line) for line in Path(path).read_bytes().splitlines()]


def test_jsonl_stores_good_rows_and_sets_bad_ones_aside(db: Database, tmp_path: Path) -> None:
    good = records(6, label=1)
    path = write_jsonl(
        tmp_path / "records.jsonl",
        [
            good[0],
            good[1],
            b"{not json",
            good[2],
            {k: v for k, v in good[3].items() if k != "latency_ms"} | {"request_id": "no-latency"},
            good[3],
            record(request_id="negative", latency_ms=-5, status="maybe"),
            b"[1, 2]",
            good[4],
            good[5],
        ],
    )

    summary = run(db, path, batch_size=3)

    assert (summary.format, summary.kind) == ("jsonl", "records")
    assert (summary.num_rows, summary.num_imported, summary.num_duplicates) == (10, 6, 0)
    assert summary.num_rejected == 4
    assert set(stored(db)) == {f"req-{i}" for i in range(6)}
    assert count(db, Label) == 6
    with db.sessions() as session:
        assert (
            session.scalar(
                select(func.sum(LatencyRollup.num_requests)).where(LatencyRollup.dim_key == "")
            )
            == 6
        )
    rejects = read_rejects(summary.rejects_path)
    assert [r["row"] for r in rejects] == [3, 5, 7, 8]
    assert "not valid JSON" in rejects[0]["errors"][0]["message"]
    assert rejects[0]["data"].rstrip("\n") == "{not json"
    assert rejects[1]["errors"] == [{"field": "latency_ms", "message": "field required"}]
    assert rejects[1]["data"]["request_id"] == "no-latency"
    assert {e["field"] for e in rejects[2]["errors"]} == {"latency_ms", "status"}
    assert rejects[3]["errors"][0]["message"] == "each line must be a JSON object"


def test_rerunning_an_import_counts_duplicates(db: Database, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "records.jsonl", records(12))
    first = run(db, path, batch_size=5)
    write_jsonl(path, records(15))

    second = run(db, path, batch_size=5)

    assert (first.num_imported, first.num_duplicates, first.rejects_path) == (12, 0, None)
    assert (second.num_rows, second.num_imported, second.num_duplicates) == (15, 3, 12)
    assert count(db, InferenceRecord) == 15
    assert not (tmp_path / "records.jsonl.rejects.jsonl").exists()


def test_gzipped_jsonl(db: Database, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "records.jsonl.gz", [*records(7), b"oops"])
    progress: list[tuple[int, int | None]] = []

    summary = run(db, path, batch_size=4, on_progress=lambda n, total: progress.append((n, total)))

    assert (summary.format, summary.num_imported, summary.num_rejected) == ("jsonl", 7, 1)
    assert len(stored(db)) == 7
    assert progress == [(4, None), (8, None)]


def test_csv_with_dotted_feature_and_tag_columns(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "records.csv"
    path.write_text(
        "model,model_version,timestamp,request_id,latency_ms,status,features.amount,"
        "features.country,tags.host,tags.region,input_size\n"
        "fraud-scorer,v1,2026-11-16T12:00:00Z,a,12.5,ok,10.25,DE,gpu-1,eu,100\n"
        "fraud-scorer,v1,2026-11-16T12:00:01Z,b,7,error,,FR,gpu-2,,\n"
        "fraud-scorer,v1,2026-11-16T12:00:02Z,c,-1,ok,3,DE,gpu-1,eu,\n"
        "fraud-scorer,v2,1794830403,d,9.5,ok,4.5,US,,us,7\n"
    )

    summary = run(db, path)

    assert (summary.format, summary.num_rows, summary.num_imported) == ("csv", 4, 3)
    rows = stored(db)
    assert rows["a"].features == {"amount": 10.25, "country": "DE"}
    assert rows["a"].tags == {"host": "gpu-1", "region": "eu"}
    assert (rows["a"].latency_ms, rows["a"].input_size, rows["a"].timestamp) == (12.5, 100, T0)
    assert rows["b"].features == {"amount": None, "country": "FR"}
    assert rows["b"].tags == {"host": "gpu-2"}
    assert (rows["b"].status, rows["b"].input_size) == ("error", None)
    assert rows["d"].timestamp == T0 + dt.timedelta(seconds=3)
    assert rows["d"].tags == {"region": "us"}
    rejects = read_rejects(summary.rejects_path)
    assert [(r["row"], r["errors"][0]["field"]) for r in rejects] == [(4, "latency_ms")]


def test_csv_with_numeric_request_ids_and_versions(db: Database, tmp_path: Path) -> None:
    """A CSV column of digits is still a string field of the contract (request ids, versions
    such as 1001 and 2 are common); only the file's type inference makes them numbers."""
    path = tmp_path / "records.csv"
    path.write_text(
        "model,model_version,timestamp,request_id,latency_ms\n"
        "fraud-scorer,2,2026-11-16T12:00:00Z,1001,12.5\n"
        "fraud-scorer,2,2026-11-16T12:00:01Z,1002,7.5\n"
    )

    summary = run(db, path)

    assert (summary.num_imported, summary.num_rejected) == (2, 0)
    assert {(r.request_id, r.model_version) for r in stored(db).values()} == {
        ("1001", "2"),
        ("1002", "2"),
    }


def parquet_records(count: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "model": ["fraud-scorer"] * count,
            "model_version": ["v1"] * count,
            "timestamp": pd.date_range(T0, periods=count, freq="s", tz="UTC"),
            "request_id": [f"req-{i}" for i in range(count)],
            "latency_ms": [10.0 + i for i in range(count)],
            "prediction": [0.5] * count,
        }
    )


def test_parquet_with_flat_dotted_columns(db: Database, tmp_path: Path) -> None:
    frame = parquet_records(5)
    frame["features.amount"] = [1.5, float("nan"), 3.0, 4.0, 5.0]
    frame["features.country"] = ["DE", "FR", None, "DE", "US"]
    frame["tags.host"] = ["gpu-1", None, "gpu-2", "gpu-1", "gpu-3"]
    frame.loc[4, "latency_ms"] = -3.0
    path = tmp_path / "records.parquet"
    frame.to_parquet(path, index=False)

    summary = run(db, path, batch_size=2)

    assert (summary.format, summary.num_rows, summary.num_imported) == ("parquet", 5, 4)
    rows = stored(db)
    assert rows["req-0"].features == {"amount": 1.5, "country": "DE"}
    assert rows["req-1"].features == {"amount": None, "country": "FR"}
    assert rows["req-2"].features == {"amount": 3.0, "country": None}
    assert rows["req-1"].tags == {}
    assert rows["req-2"].tags == {"host": "gpu-2"}
    assert (rows["req-3"].timestamp, rows["req-3"].prediction) == (
        T0 + dt.timedelta(seconds=3),
        0.5,
    )
    assert [r["row"] for r in read_rejects(summary.rejects_path)] == [5]


def test_parquet_with_struct_features_and_map_tags(db: Database, tmp_path: Path) -> None:
    table = pa.Table.from_pandas(parquet_records(3), preserve_index=False)
    features = pa.array(
        [
            {"amount": 1.5, "country": "DE", "card_present": True},
            {"amount": None, "country": "FR", "card_present": False},
            {"amount": 3.0, "country": None, "card_present": None},
        ]
    )
    tags = pa.array(
        [[("host", "gpu-1"), ("region", "eu")], [("host", "gpu-2")], []],
        type=pa.map_(pa.string(), pa.string()),
    )
    path = tmp_path / "records.pq"
    pq.write_table(table.append_column("features", features).append_column("tags", tags), path)

    summary = run(db, path)

    assert (summary.num_imported, summary.num_rejected) == (3, 0)
    rows = stored(db)
    assert rows["req-0"].features == {"amount": 1.5, "country": "DE", "card_present": True}
    assert rows["req-1"].features == {"amount": None, "country": "FR", "card_present": False}
    assert rows["req-2"].features == {"amount": 3.0, "country": None, "card_present": None}
    assert rows["req-0"].tags == {"host": "gpu-1", "region": "eu"}
    assert rows["req-1"].tags == {"host": "gpu-2"}
    with db.sessions() as session:
        hosts = session.execute(
            select(LatencyRollup.dim_value, LatencyRollup.num_requests).where(
                LatencyRollup.dim_key == "host"
            )
        ).all()
    assert sorted(hosts) == [("gpu-1", 1), ("gpu-2", 1)]


def test_labels_events_and_metrics_files(db: Database, tmp_path: Path) -> None:
    labels = write_jsonl(
        tmp_path / "labels.jsonl",
        [label(request_id="a"), label(request_id="b", label=None), label(request_id="c")],
    )
    events = write_jsonl(tmp_path / "events.jsonl", [event(), event(), event(kind="nope")])
    metrics = write_jsonl(
        tmp_path / "metrics.jsonl", [metric(), metric(value=2.0), metric(host="gpu-2")]
    )

    label_summary = run(db, labels, BatchKind.LABELS)
    event_summary = run(db, events, BatchKind.EVENTS)
    metric_summary = run(db, metrics, BatchKind.METRICS)

    assert (label_summary.num_imported, label_summary.num_rejected) == (2, 1)
    assert read_rejects(label_summary.rejects_path)[0]["errors"] == [
        {"field": "label", "message": "label must not be null"}
    ]
    assert (event_summary.num_imported, event_summary.num_duplicates) == (1, 1)
    assert event_summary.num_rejected == 1
    assert (metric_summary.num_imported, metric_summary.num_duplicates) == (2, 1)
    assert (count(db, Label), count(db, Event), count(db, MetricSample)) == (2, 1, 2)


def test_rejects_go_to_the_working_directory_by_default(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = write_jsonl(tmp_path / "in.jsonl", [record(), b"bad"])

    summary = import_file(db, path, BatchKind.RECORDS, rollup_tags=())

    assert summary.rejects_path == str(tmp_path / "in.jsonl.rejects.jsonl")
    assert [r["row"] for r in read_rejects(summary.rejects_path)] == [2]


def test_a_file_that_cannot_be_read_is_an_error(db: Database, tmp_path: Path) -> None:
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet at all")

    with pytest.raises(FileFormatError):
        run(db, broken)
    with pytest.raises(FileFormatError):
        run(db, tmp_path / "missing.jsonl")
    assert count(db, InferenceRecord) == 0


# --- CSV and Parquet records: validated by column, stored as the HTTP API stores them ----------

DATA_TABLES = ("inference_records", "labels", "latency_rollups", "model_versions", "models")
#: Columns that differ between two stores of the same records by design.
UNCOMPARED = {"id", "received_at", "created_at"}


def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every stored row of the ingest tables, without ids and arrival times, in a fixed order."""
    stored = {}
    with db.sessions() as session:
        for name in DATA_TABLES:
            table = Base.metadata.tables[name]
            columns = [c for c in table.columns if c.name not in UNCOMPARED]
            rows = session.execute(select(*columns)).all()
            stored[name] = sorted((tuple(row) for row in rows), key=repr)
    return stored


def wipe(db: Database) -> None:
    with db.write_sessions.begin() as session:
        for name in DATA_TABLES:
            session.execute(Base.metadata.tables[name].delete())


def post_rows(client: Any, key: str, path: Path, file_format: str) -> None:
    """Send the records of a file, as the file decodes them, through the HTTP API."""
    rows = [
        row.data
        for chunk in read_tables(path, file_format, chunk_size=100_000)  # type: ignore[arg-type]
        for row in table_rows(chunk)
        if isinstance(row, Row) and is_valid_record(row.data)
    ]
    response = client.post("/api/v1/records", content=orjson.dumps(rows), headers=bearer(key))
    assert response.status_code == 200, response.text


def is_valid_record(data: dict[str, Any]) -> bool:
    try:
        InferenceRecordIn.model_validate(data)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("file_format", ["parquet", "csv"])
def test_csv_and_parquet_records_are_stored_as_the_api_stores_them(
    db: Database,
    client: Any,
    api_keys: dict[str, str],
    settings: Settings,
    tmp_path: Path,
    file_format: str,
) -> None:
    table = record_file_table(400, seed=3, nested=file_format == "parquet")
    path = tmp_path / f"records.{file_format}"
    if file_format == "parquet":
        pq.write_table(table, path)
    else:
        pa_csv.write_csv(table, path)
    post_rows(client, api_keys["ingest"], path, file_format)
    through_api = snapshot(db)
    wipe(db)

    summary = import_file(
        db,
        path,
        BatchKind.RECORDS,
        rollup_tags=settings.rollup_tags,
        batch_size=1_000,
        rejects_path=tmp_path / "rejects.jsonl",
    )

    assert summary.num_imported == len(through_api["inference_records"]) > 300
    assert summary.num_rejected > 10
    assert snapshot(db) == through_api


def test_rejected_csv_and_parquet_rows_get_the_row_model_reasons(
    db: Database, tmp_path: Path
) -> None:
    table = record_file_table(300, seed=4)
    path = tmp_path / "records.parquet"
    pq.write_table(table, path)
    expected = [
        {"row": row.number, "errors": reasons(row.data)}
        for row in table_rows(TableChunk(1, table))
        if isinstance(row, Row) and not is_valid_record(row.data)
    ]

    summary = run(db, path, batch_size=64)

    rejects = read_rejects(summary.rejects_path)
    assert [{"row": r["row"], "errors": r["errors"]} for r in rejects] == expected
    assert summary.num_rejected == len(expected) > 10


def reasons(data: dict[str, Any]) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as raised:
        InferenceRecordIn.model_validate(data)
    details = simplify_errors(raised.value.errors())
    return [dict(zip(("field", "message"), describe_error(d), strict=True)) for d in details]


def test_a_record_repeated_in_later_batches_keeps_its_first_occurrence(
    db: Database, tmp_path: Path
) -> None:
    """Batches are written concurrently on Postgres; the first occurrence in the file still
    wins, however the batches interleave."""
    frame = parquet_records(60)
    frame["request_id"] = [f"req-{i % 20}" for i in range(60)]
    path = tmp_path / "records.parquet"
    frame.to_parquet(path, index=False)

    summary = run(db, path, batch_size=7)

    assert (summary.num_imported, summary.num_duplicates) == (20, 40)
    assert {r.request_id: r.latency_ms for r in stored(db).values()} == {
        f"req-{i}": 10.0 + i for i in range(20)
    }
    with db.sessions() as session:
        assert session.scalar(select(func.sum(LatencyRollup.num_requests))) == 20


def test_rows_left_to_the_row_model_are_stored_in_file_order(db: Database, tmp_path: Path) -> None:
    """Map columns are left to the row model; its accepted rows join the others in order."""
    table = pa.Table.from_pandas(parquet_records(6), preserve_index=False)
    tags = pa.array(
        [None, [("host", "gpu-1")], None, [("host", "gpu-2")], [], None],
        type=pa.map_(pa.string(), pa.string()),
    )
    path = tmp_path / "records.parquet"
    pq.write_table(table.append_column("tags", tags), path)

    summary = run(db, path)

    assert (summary.num_imported, summary.num_rejected) == (6, 0)
    with db.sessions() as session:
        rows = session.execute(
            select(InferenceRecord.request_id, InferenceRecord.tags).order_by(InferenceRecord.id)
        ).all()
    assert [tuple(row) for row in rows] == [
        ("req-0", None),
        ("req-1", {"host": "gpu-1"}),
        ("req-2", None),
        ("req-3", {"host": "gpu-2"}),
        ("req-4", {}),
        ("req-5", None),
    ]


def test_a_timestamp_a_datetime_cannot_hold_is_rejected_with_its_reason(
    db: Database, tmp_path: Path
) -> None:
    table = pa.Table.from_pandas(parquet_records(3), preserve_index=False)
    seconds = pa.array(
        [int(T0.timestamp()), 300_000_000_000, int(T0.timestamp()) + 1], pa.timestamp("s")
    )
    path = tmp_path / "records.parquet"
    pq.write_table(table.set_column(2, "timestamp", seconds), path)

    summary = run(db, path)

    assert (summary.num_imported, summary.num_rejected) == (2, 1)
    [reject] = read_rejects(summary.rejects_path)
    assert reject["row"] == 2
    assert reject["errors"][0]["message"] == "timestamp: timestamp outside the years 1 to 9999"


def test_csv_rows_past_the_first_read_block_keep_their_line_numbers(
    db: Database, tmp_path: Path
) -> None:
    count = 6_000
    lines = ["model,model_version,timestamp,request_id,latency_ms,features.note"]
    for i in range(count):
        latency = "-1" if i in (10, count - 2) else str(i % 50)
        lines.append(f"m,v1,2026-11-16T12:00:00Z,r{i},{latency},{'n' * 900}")
    path = tmp_path / "records.csv"
    path.write_text("\n".join(lines) + "\n")

    summary = run(db, path, batch_size=2_500)

    assert path.stat().st_size > 4 << 20  # more than one 4 MiB read block
    assert (summary.num_rows, summary.num_imported) == (count, count - 2)
    assert [r["row"] for r in read_rejects(summary.rejects_path)] == [12, count]
