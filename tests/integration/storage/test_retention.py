"""Retention: observe.storage.retention deletes raw rows by age a chunk at a time, and
observe.pipeline.retention applies the raw and rollup periods in short transactions."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from observe.db.engine import Database
from observe.db.models import (
    Event,
    InferenceRecord,
    Label,
    LatencyRollup,
    MetricSample,
    Span,
    SpanRollup,
    Trace,
)
from observe.pipeline import ingest
from observe.pipeline import retention as retention_job
from observe.storage import records as record_store
from observe.storage import retention as retention_store
from observe.storage import signals as signal_store
from tests.factories import T0, event_in, label_in, metric_in, records_in, span_in

NOW = T0 + dt.timedelta(days=30)
CUTOFF = NOW - dt.timedelta(days=7)


def fill(db: Database, *, num_old: int) -> None:
    """`num_old` rows per raw table older than CUTOFF, and rows at and after it."""
    old = records_in(num_old, start=CUTOFF - dt.timedelta(days=3), prefix="old", label=1)
    kept = records_in(1, start=CUTOFF, prefix="edge", label=1)
    kept += records_in(2, start=CUTOFF + dt.timedelta(days=1), prefix="new", label=1)
    with db.write_sessions.begin() as session:
        ingest.store_records(session, old + kept, rollup_tags=("host",), now=NOW)
        signal_store.insert_metric_samples(
            session,
            [
                metric_in(timestamp=r.timestamp.isoformat(), value=float(i))
                for i, r in enumerate(old + kept)
            ],
        )
        signal_store.insert_events(
            session,
            [event_in(timestamp=(CUTOFF - dt.timedelta(days=20)).isoformat())],
            received_at=NOW,
        )
        spans = [
            span_in(
                model="fraud-scorer",
                trace_id=f"{i:032x}",
                span_id=f"{i:016x}",
                start=r.timestamp,
            )
            for i, r in enumerate(old + kept, start=1)
        ]
        ingest.store_spans(session, spans, now=NOW)


def count(db: Database, model: type) -> int:
    with db.sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_delete_raw_rows_before_deletes_only_older_rows_up_to_the_limit(db: Database) -> None:
    fill(db, num_old=5)

    for table, (model, _) in retention_store.RAW_TABLES.items():
        with db.write_sessions.begin() as session:
            assert retention_store.delete_raw_rows_before(session, table, CUTOFF, limit=3) == 3
        with db.write_sessions.begin() as session:
            assert retention_store.delete_raw_rows_before(session, table, CUTOFF, limit=3) == 2
            assert retention_store.delete_raw_rows_before(session, table, CUTOFF, limit=3) == 0
        assert count(db, model) == 3, table

    with db.sessions() as session:
        assert sorted(session.scalars(select(InferenceRecord.request_id))) == [
            "edge-0",
            "new-0",
            "new-1",
        ]
        assert min(session.scalars(select(MetricSample.timestamp))) == CUTOFF


def test_a_late_label_is_kept_by_its_own_time(db: Database) -> None:
    fill(db, num_old=2)
    with db.write_sessions.begin() as session:
        record_store.upsert_labels(
            session, [label_in(request_id="old-0", label=0)], received_at=CUTOFF
        )
        retention_store.delete_raw_rows_before(session, "labels", CUTOFF, limit=100)

    with db.sessions() as session:
        assert "old-0" in set(session.scalars(select(Label.request_id)))
        assert "old-1" not in set(session.scalars(select(Label.request_id)))


class CountingSessions:
    """A session factory that counts the transactions begun through it."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self.num_transactions = 0

    def begin(self) -> Any:
        self.num_transactions += 1
        return self._sessions.begin()


def test_apply_retention_deletes_raw_rows_in_chunks_and_rollups_by_their_own_age(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retention_job, "DELETE_CHUNK", 4)
    fill(db, num_old=10)
    # Rollups of the old records are 10 days old, of the others 7 and 6: none is past 11 days.
    rollups_before = count(db, LatencyRollup)
    span_rollups_before = count(db, SpanRollup)
    sessions = CountingSessions(db.write_sessions)

    deleted = retention_job.apply_retention(
        sessions,  # type: ignore[arg-type]
        now=NOW,
        retention_days=7,
        rollup_retention_days=11,
    )

    assert deleted == {
        "inference_records": 10,
        "labels": 10,
        "metric_samples": 10,
        "spans": 10,
        "traces": 10,
        "latency_rollups": 0,
        "span_rollups": 0,
        "feature_profiles": 0,
    }
    # Chunks of 4: 4 + 4 + 2 per table, then one transaction for the rollups.
    assert sessions.num_transactions == 5 * 3 + 1
    for model in (InferenceRecord, Label, MetricSample, Span, Trace):
        assert count(db, model) == 3
    assert count(db, LatencyRollup) == rollups_before
    assert count(db, SpanRollup) == span_rollups_before
    assert count(db, Event) == 1  # events are not raw rows with a retention period

    rollup_cutoff = NOW - dt.timedelta(days=9)
    with db.sessions() as session:
        expired = (
            session.scalar(select(func.count()).where(LatencyRollup.bucket_start < rollup_cutoff))
            or 0
        )
        expired_spans = (
            session.scalar(select(func.count()).where(SpanRollup.bucket_start < rollup_cutoff)) or 0
        )
    again = retention_job.apply_retention(
        db.write_sessions, now=NOW, retention_days=7, rollup_retention_days=9
    )

    assert again["inference_records"] == 0
    assert again["latency_rollups"] == expired > 0
    assert again["span_rollups"] == expired_spans > 0
    assert count(db, LatencyRollup) == rollups_before - expired
    assert count(db, SpanRollup) == span_rollups_before - expired_spans
    with db.sessions() as session:
        assert min(session.scalars(select(LatencyRollup.bucket_start))) >= rollup_cutoff


def test_apply_retention_on_an_empty_database_deletes_nothing(db: Database) -> None:
    deleted = retention_job.apply_retention(
        db.write_sessions, now=NOW, retention_days=1, rollup_retention_days=1
    )

    assert set(deleted) == {
        *retention_store.RAW_TABLES,
        "latency_rollups",
        "span_rollups",
        "feature_profiles",
    }
    assert not any(deleted.values())
