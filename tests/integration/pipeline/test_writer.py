"""observe.pipeline.writer: committed batches, back-pressure, retries, draining on stop."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import psycopg
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from observe.db.engine import Database, create_database
from observe.db.models import Event, InferenceRecord, Label, LatencyRollup, MetricSample
from observe.pipeline.ingest import IngestCounts
from observe.pipeline.writer import (
    BatchKind,
    BatchWriter,
    ImmediateWriter,
    StoreUnavailable,
    WriterOverloaded,
)
from tests.conftest import database_url
from tests.factories import T0, event_in, label_in, metric_in, records_in

NOW = T0 + dt.timedelta(hours=1)
WAIT_SECONDS = 30


def clock() -> dt.datetime:
    return NOW


class GatedSessions:
    """A session factory whose transactions begin only once `gate` is open."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self.gate = threading.Event()
        self.waiting = threading.Event()

    def begin(self) -> Any:
        self.waiting.set()
        if not self.gate.wait(WAIT_SECONDS):
            raise RuntimeError("the test never opened the gate")
        return self._sessions.begin()


class SynchronizedSessions:
    """A session factory whose first transactions begin together, once `num_parties` wait."""

    def __init__(self, sessions: sessionmaker[Session], num_parties: int) -> None:
        self._sessions = sessions
        self._barrier = threading.Barrier(num_parties)
        self._num_waits = 0
        self._lock = threading.Lock()

    def begin(self) -> Any:
        with self._lock:
            self._num_waits += 1
            is_first = self._num_waits <= self._barrier.parties
        if is_first:
            self._barrier.wait(WAIT_SECONDS)
        return self._sessions.begin()


class FailingSessions:
    """A session factory whose first `num_failures` transactions fail with `error` after doing
    their work (so it is rolled back), as a dropped connection at commit would."""

    def __init__(self, sessions: sessionmaker[Session], num_failures: int, error: Exception):
        self._sessions = sessions
        self.num_failures = num_failures
        self.error = error
        self.num_attempts = 0

    @contextlib.contextmanager
    def begin(self) -> Iterator[Session]:
        self.num_attempts += 1
        with self._sessions.begin() as session:
            yield session
            if self.num_failures > 0:
                self.num_failures -= 1
                raise self.error


def connection_lost() -> OperationalError:
    return OperationalError(
        "COMMIT", {}, ConnectionError("server closed the connection unexpectedly")
    )


class RecordingListener:
    """A WriterListener that keeps every call."""

    def __init__(self) -> None:
        self.commits: list[tuple[str, IngestCounts]] = []
        self.failures = 0
        self.retries = 0
        self.overloads = 0
        self.queue_deltas: list[int] = []

    def on_commit(self, kind: str, counts: IngestCounts) -> None:
        self.commits.append((kind, counts))

    def on_failure(self) -> None:
        self.failures += 1

    def on_retry(self) -> None:
        self.retries += 1

    def on_overload(self) -> None:
        self.overloads += 1

    def on_queue_change(self, delta_items: int) -> None:
        self.queue_deltas.append(delta_items)


@contextlib.contextmanager
def running(sessions: Any, **options: Any) -> Iterator[BatchWriter]:
    writer = BatchWriter(sessions, rollup_tags=("host",), clock=clock, **options)
    writer.start()
    try:
        yield writer
    finally:
        writer.stop(timeout=WAIT_SECONDS)


def count(db: Database, model: type) -> int:
    with db.sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def request_ids(db: Database) -> set[str]:
    with db.sessions() as session:
        return set(session.scalars(select(InferenceRecord.request_id)))


def test_batches_are_committed_and_answer_their_counts(db: Database) -> None:
    listener = RecordingListener()
    with running(db.write_sessions) as writer:
        writer.stats.listener = listener
        first = writer.submit(BatchKind.RECORDS, records_in(10, label=1))
        again = writer.submit(BatchKind.RECORDS, records_in(15))
        labels = writer.submit(BatchKind.LABELS, [label_in(request_id="req-12", label=0)])
        events = writer.submit(BatchKind.EVENTS, [event_in(), event_in()])
        samples = writer.submit(BatchKind.METRICS, [metric_in(), metric_in(host="gpu-2")])

        results = [f.result(WAIT_SECONDS) for f in (first, again, labels, events, samples)]

    assert results == [
        IngestCounts(10, 10, 0),
        IngestCounts(15, 5, 10),
        IngestCounts(1, 1, 0),
        IngestCounts(2, 1, 1),
        IngestCounts(2, 2, 0),
    ]
    assert count(db, InferenceRecord) == 15
    assert count(db, Label) == 11
    assert (count(db, Event), count(db, MetricSample)) == (1, 2)
    assert count(db, LatencyRollup) > 0
    with db.sessions() as session:
        assert set(session.scalars(select(InferenceRecord.received_at))) == {NOW}
    stats = writer.stats
    assert (stats.batches_committed, stats.batches_failed, stats.retries) == (5, 0, 0)
    assert stats.items_new == {
        "records": 15,
        "labels": 1,
        "events": 1,
        "metrics": 2,
        "spans": 0,
        "kserve": 0,
    }
    assert stats.items_duplicate == {
        "records": 10,
        "labels": 0,
        "events": 1,
        "metrics": 0,
        "spans": 0,
        "kserve": 0,
    }
    assert [kind for kind, _ in listener.commits] == [
        "records",
        "records",
        "labels",
        "events",
        "metrics",
    ]
    assert sorted(d for d in listener.queue_deltas if d > 0) == [1, 2, 2, 10, 15]
    assert sum(listener.queue_deltas) == 0
    assert writer.queued_items() == 0


def test_a_full_queue_refuses_batches_until_it_drains(db: Database) -> None:
    sessions = GatedSessions(db.write_sessions)
    listener = RecordingListener()
    with running(sessions, max_queued_items=10) as writer:
        writer.stats.listener = listener
        first = writer.submit(BatchKind.RECORDS, records_in(5, prefix="a"))
        assert sessions.waiting.wait(WAIT_SECONDS)  # the first batch is being written
        second = writer.submit(BatchKind.RECORDS, records_in(5, prefix="b"))
        assert writer.queued_items() == 10

        with pytest.raises(WriterOverloaded, match="10 items are waiting"):
            writer.submit(BatchKind.RECORDS, records_in(1, prefix="c"))

        sessions.gate.set()
        assert first.result(WAIT_SECONDS).new == second.result(WAIT_SECONDS).new == 5
        assert writer.queued_items() == 0
        third = writer.submit(BatchKind.RECORDS, records_in(1, prefix="c"))
        assert third.result(WAIT_SECONDS).new == 1

    assert (writer.stats.rejected_overload, listener.overloads) == (1, 1)
    assert request_ids(db) == {
        "a-0",
        "a-1",
        "a-2",
        "a-3",
        "a-4",
        "b-0",
        "b-1",
        "b-2",
        "b-3",
        "b-4",
        "c-0",
    }


def test_a_batch_larger_than_the_queue_is_taken_when_the_queue_is_empty(db: Database) -> None:
    with running(db.write_sessions, max_queued_items=10) as writer:
        result = writer.submit(BatchKind.RECORDS, records_in(25)).result(WAIT_SECONDS)

    assert result == IngestCounts(25, 25, 0)


def test_transient_errors_are_retried_and_the_batch_is_stored_once(db: Database) -> None:
    sessions = FailingSessions(db.write_sessions, 2, connection_lost())
    listener = RecordingListener()
    with running(sessions) as writer:
        writer.stats.listener = listener
        result = writer.submit(BatchKind.RECORDS, records_in(20, label=1)).result(WAIT_SECONDS)

    # The failed attempts were rolled back: the third one finds every record new.
    assert result == IngestCounts(20, 20, 0)
    assert sessions.num_attempts == 3
    assert (writer.stats.retries, listener.retries) == (2, 2)
    assert (writer.stats.batches_committed, writer.stats.batches_failed) == (1, 0)
    assert count(db, InferenceRecord) == count(db, Label) == 20
    with db.sessions() as session:
        assert session.scalar(select(func.sum(LatencyRollup.num_requests))) == 40  # v1 + host


class DisconnectingSessions:
    """Postgres: the server ends the first transaction's connection before it writes anything,
    as a database restart would."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.has_disconnected = False

    @contextlib.contextmanager
    def begin(self) -> Iterator[Session]:
        with self._db.write_sessions.begin() as session:
            if not self.has_disconnected:
                self.has_disconnected = True
                pid = session.scalar(text("SELECT pg_backend_pid()"))
                with self._db.engine.connect() as other:
                    other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            yield session


@contextlib.contextmanager
def write_lock_held(db: Database, seconds: float) -> Iterator[None]:
    """SQLite: another connection holds the write lock for `seconds`."""
    holder = db.write_sessions()
    holder.connection()  # BEGIN IMMEDIATE
    release = threading.Timer(seconds, holder.close)
    release.start()
    try:
        yield
    finally:
        release.join()


def test_a_dropped_connection_or_a_locked_database_is_retried(db: Database) -> None:
    with contextlib.ExitStack() as stack:
        if db.dialect == "postgresql":
            sessions: Any = DisconnectingSessions(db)
        else:
            impatient = create_database(database_url(db), sqlite_busy_timeout_ms=50)
            stack.callback(impatient.engine.dispose)
            sessions = impatient.write_sessions
            stack.enter_context(write_lock_held(db, seconds=0.3))
        writer = stack.enter_context(running(sessions))
        result = writer.submit(BatchKind.RECORDS, records_in(10, label=1)).result(WAIT_SECONDS)

    assert result == IngestCounts(10, 10, 0)
    assert writer.stats.retries >= 1
    assert writer.stats.batches_failed == 0
    assert count(db, InferenceRecord) == count(db, Label) == 10


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(connection_lost(), id="operational"),
        pytest.param(
            DBAPIError("COMMIT", {}, psycopg.errors.SerializationFailure("could not serialize")),
            id="serialization-failure",
        ),
        pytest.param(
            DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True),
            id="connection-invalidated",
        ),
    ],
)
def test_a_database_that_stays_down_fails_the_batch_after_its_deadline(
    db: Database, error: Exception
) -> None:
    sessions = FailingSessions(db.write_sessions, 1_000, error)
    listener = RecordingListener()
    started = time.monotonic()
    with running(sessions, write_timeout_seconds=0.45) as writer:
        writer.stats.listener = listener
        future = writer.submit(BatchKind.RECORDS, records_in(5))
        with pytest.raises(StoreUnavailable, match="the database is unavailable") as raised:
            future.result(WAIT_SECONDS)
        failed_at = time.monotonic()
        sessions.num_failures = 0
        still_working = writer.submit(BatchKind.EVENTS, [event_in()])
        assert still_working.result(WAIT_SECONDS).new == 1

    assert raised.value.__cause__ is error
    # Backoff of 0.1 s, then 0.2 s: it gives up before a wait would pass the deadline.
    assert 0.1 <= failed_at - started < 0.45
    assert 1 <= writer.stats.retries <= 2
    assert sessions.num_attempts == writer.stats.retries + 2  # + the events batch
    assert writer.stats.batches_failed == 1
    assert (listener.retries, listener.failures) == (writer.stats.retries, 1)
    assert count(db, InferenceRecord) == 0


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(IntegrityError("INSERT", {}, Exception("constraint")), id="integrity"),
        pytest.param(
            DBAPIError("INSERT", {}, psycopg.errors.UniqueViolation("duplicate key")),
            id="unique-violation",
        ),
    ],
)
def test_a_non_transient_error_fails_the_batch_at_once(db: Database, error: Exception) -> None:
    sessions = FailingSessions(db.write_sessions, 1, error)
    with running(sessions) as writer:
        failed = writer.submit(BatchKind.RECORDS, records_in(5))
        with pytest.raises(type(error)):
            failed.result(WAIT_SECONDS)
        after = writer.submit(BatchKind.RECORDS, records_in(5)).result(WAIT_SECONDS)

    assert sessions.num_attempts == 2
    assert (writer.stats.retries, writer.stats.batches_failed) == (0, 1)
    assert after == IngestCounts(5, 5, 0)


def test_a_batch_of_the_wrong_items_fails_its_future_only(db: Database) -> None:
    with running(db.write_sessions) as writer:
        wrong = writer.submit(BatchKind.RECORDS, [event_in()])
        right = writer.submit(BatchKind.EVENTS, [event_in()])

        with pytest.raises(AttributeError):
            wrong.result(WAIT_SECONDS)
        assert right.result(WAIT_SECONDS).new == 1

    assert writer.stats.batches_failed == 1


def test_stop_writes_everything_queued_then_refuses_new_batches(db: Database) -> None:
    sessions = GatedSessions(db.write_sessions)
    writer = BatchWriter(sessions, rollup_tags=(), clock=clock)  # type: ignore[arg-type]
    writer.start()
    futures = [writer.submit(BatchKind.RECORDS, records_in(4, prefix=f"b{n}")) for n in range(5)]
    threading.Timer(0.2, sessions.gate.set).start()

    writer.stop(timeout=WAIT_SECONDS)

    assert all(f.done() for f in futures)
    assert [f.result().new for f in futures] == [4] * 5
    assert count(db, InferenceRecord) == 20
    assert writer.queued_items() == 0
    with pytest.raises(StoreUnavailable, match="shutting down"):
        writer.submit(BatchKind.RECORDS, records_in(1))


def test_a_cancelled_batch_is_not_written(db: Database) -> None:
    sessions = GatedSessions(db.write_sessions)
    with running(sessions) as writer:
        first = writer.submit(BatchKind.RECORDS, records_in(2, prefix="kept"))
        assert sessions.waiting.wait(WAIT_SECONDS)
        cancelled = writer.submit(BatchKind.RECORDS, records_in(2, prefix="dropped"))
        assert cancelled.cancel()
        last = writer.submit(BatchKind.RECORDS, records_in(2, prefix="last"))
        sessions.gate.set()
        first.result(WAIT_SECONDS)
        last.result(WAIT_SECONDS)

    assert request_ids(db) == {"kept-0", "kept-1", "last-0", "last-1"}
    assert writer.queued_items() == 0


def test_writer_threads_merging_into_the_same_rollups_end_with_exact_totals(
    db: Database,
) -> None:
    """Two writers, two threads each, on batches that cover the same minutes."""
    writers = [
        BatchWriter(db.write_sessions, rollup_tags=("host",), num_threads=2, clock=clock)
        for _ in range(2)
    ]
    for writer in writers:
        writer.start()
    futures: list[Future[IngestCounts]] = []
    for number in range(12):
        batch = records_in(50, seed=number, prefix=f"n{number}", spacing_seconds=3.0)
        futures.append(writers[number % 2].submit(BatchKind.RECORDS, batch))
    results = [future.result(WAIT_SECONDS) for future in futures]
    for writer in writers:
        writer.stop(timeout=WAIT_SECONDS)

    assert sum(r.new for r in results) == 600
    assert sum(w.stats.batches_failed for w in writers) == 0
    with db.sessions() as session:
        whole = session.execute(
            select(
                func.sum(LatencyRollup.num_requests), func.sum(LatencyRollup.latency_sum_ms)
            ).where(LatencyRollup.dim_key == "")
        ).one()
        by_host = session.scalar(
            select(func.sum(LatencyRollup.num_requests)).where(LatencyRollup.dim_key == "host")
        )
        raw_sum = session.scalar(select(func.sum(InferenceRecord.latency_ms)))
    assert (whole[0], by_host) == (600, 600)
    assert whole[1] == pytest.approx(raw_sum, rel=1e-9)


def test_immediate_writer_commits_in_the_calling_thread(db: Database) -> None:
    writer = ImmediateWriter(db.write_sessions, rollup_tags=(), clock=clock)
    writer.start()

    future = writer.submit(BatchKind.RECORDS, records_in(3))
    repeat = writer.submit(BatchKind.RECORDS, records_in(3))
    wrong = writer.submit(BatchKind.METRICS, [event_in()])

    assert future.done()
    assert (future.result(), repeat.result()) == (IngestCounts(3, 3, 0), IngestCounts(3, 0, 3))
    assert isinstance(wrong.exception(), AttributeError)
    assert count(db, InferenceRecord) == 3
    assert writer.queued_items() == 0
    assert (writer.stats.batches_committed, writer.stats.batches_failed) == (2, 1)
    assert writer.stats.items_duplicate["records"] == 3
    writer.stop()


def test_writers_racing_on_the_same_ids_in_opposite_order_store_each_record_once(
    db: Database,
) -> None:
    """Two batches sharing their ids in opposite order, written at the same moment: on Postgres
    their inserts deadlock, which is transient and retried, never a failed batch."""
    sessions = SynchronizedSessions(db.write_sessions, num_parties=2)
    writers = [BatchWriter(sessions, rollup_tags=(), clock=clock) for _ in range(2)]  # type: ignore[arg-type]
    for writer in writers:
        writer.start()
    batch = records_in(2_000)
    futures = [
        writers[0].submit(BatchKind.RECORDS, batch),
        writers[1].submit(BatchKind.RECORDS, batch[::-1]),
    ]
    results = [future.result(WAIT_SECONDS) for future in futures]
    for writer in writers:
        writer.stop(timeout=WAIT_SECONDS)

    assert sorted(r.new for r in results) == [0, 2_000]
    assert sum(r.duplicates for r in results) == 2_000
    assert sum(w.stats.batches_failed for w in writers) == 0
    assert count(db, InferenceRecord) == 2_000
    with db.sessions() as session:
        assert session.scalar(select(func.sum(LatencyRollup.num_requests))) == 2_000
