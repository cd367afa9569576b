"""observe.pipeline.importer: files of every format stored in batches, bad rows set aside."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

from collectors.files import FileFormatError
from observe.db.engine import Database
from observe.db.models import Event, InferenceRecord, Label, LatencyRollup, MetricSample
from observe.pipeline.importer import import_file
from observe.pipeline.writer import BatchKind
from tests.factories import T0, event, label, metric, record, records

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
