"""observe.storage.rollups: inserting, locking, saving, loading and deleting rollup rows, and
the raw latencies read for slices without rollups."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pandas as pd

from analyzers.histograms import Histogram
from observe.db.engine import Database
from observe.schemas.records import InferenceRecordIn
from observe.storage import records as record_store
from observe.storage import rollups as rollup_store
from observe.storage.rollups import RollupKey, RollupRow
from tests.factories import T0, record_in


def minute(number: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=number)


def key(number: int, version: str = "v1", dim: tuple[str, str] = ("", "")) -> RollupKey:
    return ("fraud-scorer", version, dim[0], dim[1], minute(number))


def row(
    k: RollupKey, *latencies: float, errors: int = 0, sizes: tuple[float, ...] = ()
) -> RollupRow:
    return RollupRow(
        id=None,
        key=k,
        num_requests=len(latencies),
        num_errors=errors,
        latency_sum_ms=sum(latencies),
        latency_min_ms=min(latencies, default=0.0),
        latency_max_ms=max(latencies, default=0.0),
        num_with_input_size=len(sizes),
        input_size_sum=sum(sizes),
        histogram=Histogram.from_values(latencies).to_bytes(),
    )


def insert(db: Database, rows: list[RollupRow]) -> set[RollupKey]:
    with db.write_sessions.begin() as session:
        return rollup_store.insert_latency_rollups(session, rows)


def locked(db: Database, keys: list[RollupKey]) -> dict[RollupKey, RollupRow]:
    with db.write_sessions.begin() as session:
        return rollup_store.lock_latency_rollups(session, keys)


def test_insert_returns_the_keys_it_stored_and_skips_existing_ones(db: Database) -> None:
    assert insert(db, [row(key(0), 10.0), row(key(1), 20.0)]) == {key(0), key(1)}

    assert insert(db, [row(key(1), 999.0), row(key(2), 30.0)]) == {key(2)}

    stored = locked(db, [key(0), key(1), key(2)])
    assert {k: r.latency_sum_ms for k, r in stored.items()} == {
        key(0): 10.0,
        key(1): 20.0,
        key(2): 30.0,
    }
    assert insert(db, []) == set()


def test_lock_returns_stored_rows_by_key_with_every_value(db: Database) -> None:
    host = ("host", "gpu-1")
    insert(
        db,
        [
            row(key(0), 5.0, 7.0, 9.0, errors=1, sizes=(100.0, 300.0)),
            row(key(0, dim=host), 5.0),
            row(key(0, version="v2"), 11.0),
        ],
    )

    found = locked(db, [key(0), key(0, dim=host), key(5), key(0, dim=("host", "gpu-2"))])

    assert set(found) == {key(0), key(0, dim=host)}
    whole = found[key(0)]
    assert whole.id is not None
    assert whole.key[4].tzinfo is not None
    assert whole.key == key(0)
    assert (whole.num_requests, whole.num_errors) == (3, 1)
    assert (whole.latency_sum_ms, whole.latency_min_ms, whole.latency_max_ms) == (21.0, 5.0, 9.0)
    assert (whole.num_with_input_size, whole.input_size_sum) == (2, 400.0)
    assert Histogram.from_bytes(whole.histogram).total == 3
    assert found[key(0, dim=host)].num_requests == 1


def test_lock_finds_more_keys_than_one_query_chunk(db: Database) -> None:
    keys = [key(number) for number in range(1_200)]
    insert(db, [row(k, float(number + 1)) for number, k in enumerate(keys)])

    found = locked(db, [*keys, key(5_000)])

    assert set(found) == set(keys)
    assert found[key(1_199)].latency_sum_ms == 1_200.0


def test_save_writes_back_merged_rows(db: Database) -> None:
    insert(db, [row(key(0), 10.0), row(key(1), 20.0)])

    with db.write_sessions.begin() as session:
        stored = rollup_store.lock_latency_rollups(session, [key(0)])
        merged = stored[key(0)]
        merged.num_requests += 2
        merged.num_errors += 1
        merged.latency_sum_ms += 50.0
        merged.latency_max_ms = 40.0
        merged.histogram = (
            Histogram.from_bytes(merged.histogram).merge(Histogram.from_values([10, 40])).to_bytes()
        )
        rollup_store.save_latency_rollups(session, stored.values())
        rollup_store.save_latency_rollups(session, [])

    after = locked(db, [key(0), key(1)])
    assert (after[key(0)].num_requests, after[key(0)].num_errors) == (3, 1)
    assert (after[key(0)].latency_sum_ms, after[key(0)].latency_max_ms) == (60.0, 40.0)
    assert Histogram.from_bytes(after[key(0)].histogram).total == 3
    assert after[key(1)].num_requests == 1


def load(
    db: Database,
    *,
    model: str = "fraud-scorer",
    start: dt.datetime = minute(0),
    end: dt.datetime = minute(60),
    **options: Any,
) -> pd.DataFrame:
    with db.sessions() as session:
        return rollup_store.load_latency_rollups(
            session, model=model, start=start, end=end, **options
        )


def test_load_filters_by_dimension_version_and_half_open_window(db: Database) -> None:
    insert(
        db,
        [
            row(key(0), 1.0),
            row(key(1), 2.0),
            row(key(2, version="v2"), 3.0),
            row(key(3), 4.0),
            row(key(1, dim=("host", "gpu-1")), 5.0),
            row(key(1, dim=("host", "gpu-2")), 6.0),
            row(key(1, dim=("region", "eu")), 7.0),
            row(key(4)),  # an empty row is never reported
            row(("ranker", "v1", "", "", minute(1)), 8.0),
        ],
    )

    frame = load(db)
    assert list(frame.columns) == list(rollup_store.ROLLUP_COLUMNS)
    assert sorted(frame["latency_sum_ms"]) == [1.0, 2.0, 3.0, 4.0]
    window = load(db, start=minute(1), end=minute(3))
    assert sorted(window["latency_sum_ms"]) == [2.0, 3.0]
    hosts = load(db, dim_key="host")
    assert sorted(zip(hosts["dim_value"], hosts["latency_sum_ms"], strict=True)) == [
        ("gpu-1", 5.0),
        ("gpu-2", 6.0),
    ]
    v2 = load(db, model_versions=["v2"])
    assert v2["latency_sum_ms"].tolist() == [3.0]
    assert load(db, model="nope").empty


def test_delete_rollups_before_a_cutoff_keeps_the_cutoff_bucket(db: Database) -> None:
    insert(db, [row(key(number), 1.0) for number in range(5)])

    with db.write_sessions.begin() as session:
        assert rollup_store.delete_rollups_before(session, minute(3)) == 3

    assert set(locked(db, [key(number) for number in range(5)])) == {key(3), key(4)}


def store_records(db: Database, records: list[InferenceRecordIn]) -> None:
    with db.write_sessions.begin() as session:
        record_store.insert_records(session, records, received_at=minute(60))


def test_raw_latencies_of_a_window_with_and_without_a_tag(db: Database) -> None:
    store_records(
        db,
        [
            record_in(request_id="a", latency_ms=1.0, tags={"host": "gpu-1"}),
            record_in(request_id="b", latency_ms=2.0, status="error", tags={"region": "eu"}),
            record_in(request_id="c", latency_ms=3.0, model_version="v2", tags={"host": "gpu-2"}),
            record_in(request_id="d", latency_ms=4.0, timestamp=minute(10).isoformat()),
            record_in(model="ranker", request_id="e", latency_ms=5.0),
        ],
    )

    def load_raw(**options: Any) -> pd.DataFrame:
        with db.sessions() as session:
            frame = rollup_store.load_raw_latencies(
                session, model="fraud-scorer", start=minute(0), end=minute(10), **options
            )
        return frame.sort_values("latency_ms")

    by_host = load_raw(tag_key="host")
    assert list(by_host.columns) == [
        "timestamp",
        "model_version",
        "latency_ms",
        "dim_value",
        "is_error",
    ]
    assert by_host["latency_ms"].tolist() == [1.0, 2.0, 3.0]
    assert by_host["is_error"].tolist() == [False, True, False]
    assert by_host["model_version"].tolist() == ["v1", "v1", "v2"]
    assert by_host["dim_value"].tolist() == ["gpu-1", None, "gpu-2"]
    assert by_host["timestamp"].tolist() == [minute(0)] * 3
    whole = load_raw()
    assert list(whole.columns) == list(by_host.columns)
    assert whole["dim_value"].tolist() == ["", "", ""]
    assert load_raw(model_versions=["v2"])["latency_ms"].tolist() == [3.0]


def test_a_locked_row_makes_a_second_writer_wait_and_merge_into_the_committed_value(
    db: Database,
) -> None:
    insert(db, [row(key(0), 10.0)])
    second_done = threading.Event()
    seen_by_second: list[int] = []

    def second_writer() -> None:
        with db.write_sessions.begin() as session:
            stored = rollup_store.lock_latency_rollups(session, [key(0)])
            seen_by_second.append(stored[key(0)].num_requests)
            stored[key(0)].num_requests += 1
            rollup_store.save_latency_rollups(session, stored.values())
        second_done.set()

    with db.write_sessions.begin() as session:
        stored = rollup_store.lock_latency_rollups(session, [key(0)])
        stored[key(0)].num_requests += 5
        rollup_store.save_latency_rollups(session, stored.values())
        thread = threading.Thread(target=second_writer)
        thread.start()
        assert not second_done.wait(0.3)  # blocked while the first transaction holds the row
    thread.join(timeout=30)

    assert second_done.is_set()
    assert seen_by_second == [6]
    assert locked(db, [key(0)])[key(0)].num_requests == 7
