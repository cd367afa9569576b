"""observe.storage.records: idempotent record insert (COPY and its fallback), labels, reads."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select
from sqlalchemy import insert as sql_insert
from sqlalchemy.exc import IntegrityError

from observe.db.engine import Database
from observe.db.models import InferenceRecord, Label
from observe.storage import records as record_store
from tests.factories import T0, label_in, record_in, records_in

RECEIVED_AT = T0 + dt.timedelta(hours=1)


def insert(db: Database, records: list[Any]) -> record_store.RecordInsertResult:
    with db.write_sessions.begin() as session:
        return record_store.insert_records(session, records, received_at=RECEIVED_AT)


def upsert(db: Database, labels: list[Any], received_at: dt.datetime = RECEIVED_AT) -> Any:
    with db.write_sessions.begin() as session:
        return record_store.upsert_labels(session, labels, received_at=received_at)


def stored_records(db: Database) -> dict[tuple[str, str], InferenceRecord]:
    with db.sessions() as session:
        return {(r.model, r.request_id): r for r in session.scalars(select(InferenceRecord))}


def stored_labels(db: Database) -> dict[tuple[str, str], Label]:
    with db.sessions() as session:
        return {(r.model, r.request_id): r for r in session.scalars(select(Label))}


def count(db: Database, model: type) -> int:
    with db.sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


@contextlib.contextmanager
def captured_sql(engine: Engine) -> Iterator[list[str]]:
    """Statements SQLAlchemy sends while the block runs (COPY goes past it, to the driver)."""
    statements: list[str] = []

    def capture(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", capture)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", capture)


def test_repeats_within_a_batch_are_duplicates_and_the_first_is_kept(db: Database) -> None:
    batch = [
        record_in(request_id="a", latency_ms=1.0),
        record_in(request_id="b", latency_ms=2.0),
        record_in(request_id="a", latency_ms=99.0),
        record_in(request_id="b", latency_ms=98.0),
        record_in(request_id="c", latency_ms=3.0),
    ]

    result = insert(db, batch)

    assert result.new_positions == [0, 1, 4]
    assert (result.num_new, result.num_duplicates) == (3, 2)
    stored = stored_records(db)
    assert {key[1]: row.latency_ms for key, row in stored.items()} == {"a": 1.0, "b": 2.0, "c": 3.0}


def test_repeats_across_batches_are_duplicates_and_only_new_ids_are_stored(db: Database) -> None:
    insert(db, records_in(5))
    retry = records_in(8, seed=1)  # req-0..req-7 with other latencies: req-0..4 are repeats

    result = insert(db, retry)

    assert result.new_positions == [5, 6, 7]
    assert result.num_duplicates == 5
    stored = stored_records(db)
    assert len(stored) == 8
    first = {r.request_id: r.latency_ms for r in records_in(5)}
    later = {r.request_id: r.latency_ms for r in retry}
    for (_, request_id), row in stored.items():
        expected = first.get(request_id, later[request_id])
        assert row.latency_ms == expected


def test_same_request_id_under_two_models_is_stored_for_both(db: Database) -> None:
    batch = [
        record_in(model="fraud-scorer", request_id="r-1", latency_ms=1.0),
        record_in(model="ranker", request_id="r-1", latency_ms=2.0),
    ]
    assert insert(db, batch).num_new == 2
    again = insert(db, [record_in(model="ranker", request_id="r-1"), record_in(request_id="r-2")])

    assert (again.new_positions, again.num_duplicates) == ([1], 1)
    assert stored_records(db).keys() == {
        ("fraud-scorer", "r-1"),
        ("ranker", "r-1"),
        ("fraud-scorer", "r-2"),
    }


def test_a_batch_of_new_ids_takes_the_copy_path_without_staging(db: Database) -> None:
    with captured_sql(db.engine) as statements:
        result = insert(db, records_in(50))

    assert result.num_new == 50
    assert count(db, InferenceRecord) == 50
    sent = "\n".join(statements)
    assert "observe_staging_records" not in sent
    if db.dialect == "postgresql":  # rows went in by COPY, which SQLAlchemy never sees
        assert "INSERT INTO inference_records" not in sent


def test_existing_ids_fall_back_through_staging_and_store_exactly_the_new_ones(
    db: Database,
) -> None:
    insert(db, records_in(10, prefix="old"))
    batch = records_in(10, prefix="old", seed=3)[3:7] + records_in(6, prefix="new")
    batch += [record_in(request_id="new-2", latency_ms=500.0)]  # a repeat inside the batch too

    with captured_sql(db.engine) as statements:
        result = insert(db, batch)

    assert result.new_positions == list(range(4, 10))
    assert result.num_duplicates == 5
    stored = stored_records(db)
    assert len(stored) == 16
    assert {k[1] for k in stored if k[1].startswith("new")} == {f"new-{i}" for i in range(6)}
    assert stored[("fraud-scorer", "new-2")].latency_ms == records_in(6, prefix="new")[2].latency_ms
    if db.dialect == "postgresql":
        assert any("observe_staging_records" in s for s in statements)


def test_fallback_works_twice_in_one_transaction_and_for_a_batch_of_repeats(db: Database) -> None:
    insert(db, records_in(4))
    with db.write_sessions.begin() as session:
        first = record_store.insert_records(session, records_in(6), received_at=RECEIVED_AT)
        second = record_store.insert_records(session, records_in(8), received_at=RECEIVED_AT)
        repeats = record_store.insert_records(session, records_in(8), received_at=RECEIVED_AT)

    assert (first.new_positions, first.num_duplicates) == ([4, 5], 4)
    assert (second.new_positions, second.num_duplicates) == ([6, 7], 6)
    assert (repeats.new_positions, repeats.num_duplicates) == ([], 8)
    assert count(db, InferenceRecord) == 8


def test_every_field_survives_the_round_trip(db: Database) -> None:
    original = record_in(
        request_id="full",
        timestamp="2026-11-16T14:30:15.250+02:00",
        latency_ms=17.125,
        status="error",
        error="timeout\tafter 3 tries\nupstream said: \\N",
        features={"amount": 12.5, "num_tx": 3, "country": "Ä\\B\t", "card": True, "x": None},
        prediction={"score": 0.91, "class": "fraud"},
        tags={"host": "gpu-1", "canary": "true"},
        input_size=512.0,
        trace_id="ABCDEF0123456789ABCDEF0123456789",
    )
    bare = record_in(request_id="bare", prediction="yes", features=None, tags=None)
    insert(db, [original, bare])

    stored = stored_records(db)
    row = stored[("fraud-scorer", "full")]
    assert row.timestamp == dt.datetime(2026, 11, 16, 12, 30, 15, 250_000, tzinfo=dt.UTC)
    assert row.received_at == RECEIVED_AT
    assert (row.model_version, row.latency_ms, row.status) == ("v1", 17.125, "error")
    assert row.error == "timeout\tafter 3 tries\nupstream said: \\N"
    assert row.features == {
        "amount": 12.5,
        "num_tx": 3,
        "country": "Ä\\B\t",
        "card": True,
        "x": None,
    }
    assert row.prediction == {"score": 0.91, "class": "fraud"}
    assert row.tags == {"host": "gpu-1", "canary": "true"}
    assert row.input_size == 512.0
    assert row.trace_id == "abcdef0123456789abcdef0123456789"
    other = stored[("fraud-scorer", "bare")]
    assert (other.prediction, other.features, other.tags) == ("yes", None, None)
    assert (other.input_size, other.trace_id, other.error) == (None, None, None)


def test_inline_labels_of_new_records_go_to_the_labels_table(db: Database) -> None:
    batch = [
        record_in(request_id="a", label=1),
        record_in(request_id="b"),
        record_in(request_id="c", label={"class": "fraud"}, timestamp="2026-11-16T12:05:00Z"),
    ]
    insert(db, batch)
    insert(db, [record_in(request_id="a", label=0)])  # a repeated record brings nothing new

    labels = stored_labels(db)
    assert {key[1]: row.label for key, row in labels.items()} == {"a": 1, "c": {"class": "fraud"}}
    assert labels[("fraud-scorer", "c")].timestamp == T0 + dt.timedelta(minutes=5)
    assert labels[("fraud-scorer", "c")].received_at == RECEIVED_AT


def test_a_failed_transaction_leaves_nothing_of_the_batch(db: Database) -> None:
    insert(db, records_in(2, prefix="kept"))
    batch = records_in(20, label=1) + records_in(2, prefix="kept")
    invalid = {
        "model": "fraud-scorer",
        "model_version": "v1",
        "request_id": "negative",
        "timestamp": T0,
        "latency_ms": -1.0,
        "status": "ok",
        "received_at": RECEIVED_AT,
    }

    results: list[record_store.RecordInsertResult] = []

    def insert_then_fail() -> None:
        with db.write_sessions.begin() as session:
            results.append(record_store.insert_records(session, batch, received_at=RECEIVED_AT))
            session.execute(sql_insert(InferenceRecord), [invalid])

    with pytest.raises(IntegrityError):
        insert_then_fail()

    assert results[0].num_new == 20
    assert set(stored_records(db)) == {("fraud-scorer", "kept-0"), ("fraud-scorer", "kept-1")}
    assert count(db, Label) == 0


def test_late_label_is_matched_by_request_id(db: Database) -> None:
    insert(db, [record_in(request_id="a"), record_in(request_id="b")])

    assert upsert(db, [label_in(request_id="a", label="fraud")]) == (1, 0)

    labels = stored_labels(db)
    assert labels[("fraud-scorer", "a")].label == "fraud"
    assert labels[("fraud-scorer", "a")].timestamp == RECEIVED_AT  # no timestamp: when it came
    page = load(db)
    assert {item["request_id"]: item["label"] for item in page.items} == {"a": "fraud", "b": None}


def test_newer_label_replaces_older_one_and_older_or_identical_changes_nothing(
    db: Database,
) -> None:
    t1, t2 = T0 + dt.timedelta(hours=1), T0 + dt.timedelta(hours=2)
    assert upsert(db, [label_in(label=0, timestamp=t1.isoformat())]) == (1, 0)

    assert upsert(db, [label_in(label=1, timestamp=t2.isoformat())]) == (1, 0)
    assert upsert(db, [label_in(label=0, timestamp=t1.isoformat())]) == (0, 1)
    assert upsert(db, [label_in(label=1, timestamp=t2.isoformat())]) == (0, 1)

    row = stored_labels(db)[("fraud-scorer", "req-0")]
    assert (row.label, row.timestamp) == (1, t2)
    assert count(db, Label) == 1


def test_a_retried_label_is_a_duplicate_and_keeps_its_first_time(db: Database) -> None:
    first, retry = T0 + dt.timedelta(hours=1), T0 + dt.timedelta(hours=2)
    assert upsert(db, [label_in(label=1)], received_at=first) == (1, 0)

    assert upsert(db, [label_in(label=1)], received_at=retry) == (0, 1)  # arrival time: newer
    assert upsert(db, [label_in(label=1, timestamp=retry.isoformat())]) == (0, 1)

    row = stored_labels(db)[("fraud-scorer", "req-0")]
    assert (row.label, row.timestamp, row.received_at) == (1, first, first)
    assert upsert(db, [label_in(label=0)], received_at=retry) == (1, 0)
    assert stored_labels(db)[("fraud-scorer", "req-0")].timestamp == retry


def test_label_with_same_time_and_another_value_replaces_the_stored_one(db: Database) -> None:
    upsert(db, [label_in(label={"class": "ok"}, timestamp=T0.isoformat())])

    assert upsert(db, [label_in(label={"class": "fraud"}, timestamp=T0.isoformat())]) == (1, 0)

    assert stored_labels(db)[("fraud-scorer", "req-0")].label == {"class": "fraud"}


def test_newest_label_of_a_batch_wins_whatever_its_position(db: Database) -> None:
    batch = [
        label_in(request_id="a", label=3, timestamp=(T0 + dt.timedelta(minutes=3)).isoformat()),
        label_in(request_id="a", label=1, timestamp=(T0 + dt.timedelta(minutes=1)).isoformat()),
        label_in(request_id="b", label=1, timestamp=(T0 + dt.timedelta(minutes=1)).isoformat()),
        label_in(request_id="b", label=5, timestamp=(T0 + dt.timedelta(minutes=5)).isoformat()),
    ]

    assert upsert(db, batch) == (2, 2)

    assert {k[1]: row.label for k, row in stored_labels(db).items()} == {"a": 3, "b": 5}


def test_label_arriving_before_its_record_is_kept(db: Database) -> None:
    late = T0 + dt.timedelta(hours=3)
    upsert(db, [label_in(request_id="a", label="fraud", timestamp=late.isoformat())])
    upsert(db, [label_in(request_id="b", label="ok", timestamp=late.isoformat())])

    # The record's inline label is as old as the record, older than the label already stored.
    insert(db, [record_in(request_id="a", label="ok"), record_in(request_id="b")])

    labels = stored_labels(db)
    assert {k[1]: (row.label, row.timestamp) for k, row in labels.items()} == {
        "a": ("fraud", late),
        "b": ("ok", late),
    }
    assert {item["request_id"]: item["label"] for item in load(db).items} == {
        "a": "fraud",
        "b": "ok",
    }


def load(db: Database, **filters: Any) -> record_store.RecordPage:
    with db.sessions() as session:
        return record_store.load_records(
            session, model=filters.pop("model", "fraud-scorer"), **filters
        )


def test_load_records_filters_by_window_version_tags_and_status(db: Database) -> None:
    batch = [
        record_in(request_id="a", tags={"host": "gpu-1"}, model_version="v1"),
        record_in(request_id="b", tags={"host": "gpu-2"}, model_version="v1", status="error"),
        record_in(
            request_id="c",
            tags={"host": "gpu-1", "region": "us"},
            model_version="v2",
            timestamp=(T0 + dt.timedelta(minutes=5)).isoformat(),
        ),
        record_in(request_id="d", tags=None, timestamp=(T0 + dt.timedelta(minutes=10)).isoformat()),
        record_in(model="ranker", request_id="e"),
    ]
    insert(db, batch)

    def ids(**filters: Any) -> list[str]:
        return [item["request_id"] for item in load(db, **filters).items]

    assert ids() == ["d", "c", "b", "a"]  # newest first; equal times: last stored first
    assert ids(model="ranker") == ["e"]
    assert ids(model="unknown") == []
    assert sorted(ids(start=T0 + dt.timedelta(minutes=5))) == ["c", "d"]
    assert sorted(ids(end=T0 + dt.timedelta(minutes=5))) == ["a", "b"]
    assert ids(model_version="v2") == ["c"]
    assert sorted(ids(tags={"host": "gpu-1"})) == ["a", "c"]
    assert ids(tags={"host": "gpu-1", "region": "us"}) == ["c"]
    assert ids(status="error") == ["b"]


def test_load_records_pages_by_cursor_and_stays_consistent_while_records_arrive(
    db: Database,
) -> None:
    insert(db, records_in(25, spacing_seconds=10))
    first = load(db, limit=10)
    insert(db, records_in(5, prefix="newer", start=T0 + dt.timedelta(hours=1)))

    pages = [first]
    while pages[-1].next_cursor is not None:
        pages.append(load(db, limit=10, cursor=pages[-1].next_cursor))

    assert [len(page.items) for page in pages] == [10, 10, 5]
    seen = [item["request_id"] for page in pages for item in page.items]
    assert seen == [f"req-{i}" for i in range(24, -1, -1)]


def test_records_with_equal_timestamps_are_paged_without_loss_or_repeat(db: Database) -> None:
    insert(db, records_in(7, spacing_seconds=0))

    pages = [load(db, limit=3)]
    while pages[-1].next_cursor is not None:
        pages.append(load(db, limit=3, cursor=pages[-1].next_cursor))

    seen = [item["request_id"] for page in pages for item in page.items]
    assert sorted(seen) == sorted(f"req-{i}" for i in range(7))
    assert len(seen) == 7


NAIVE_TIME_CURSOR = "WyIyMDI2LTExLTE2VDEyOjAwOjAwIiwxXQ"  # ["2026-11-16T12:00:00", 1]
TEXT_ID_CURSOR = "WyIyMDI2LTExLTE2VDEyOjAwOjAwKzAwOjAwIiwieCJd"  # [".. +00:00", "x"]


def test_a_cursor_not_made_by_load_records_is_refused(db: Database) -> None:
    for cursor in ("not-a-cursor", "", "W10", NAIVE_TIME_CURSOR, TEXT_ID_CURSOR):
        with pytest.raises(ValueError, match="invalid cursor"):
            load(db, cursor=cursor)
