"""The batch writer: owns the write queue, transactions, retries and back-pressure.

Every ingest path hands validated batches to a writer. `BatchWriter` runs them on background
threads, one transaction per batch, and resolves a future once the batch is committed, which is
what lets the HTTP layer answer 2xx only for committed data. A full queue refuses new batches at
once (`WriterOverloaded`) instead of letting memory grow; a database that stops answering is
retried with backoff until the batch's deadline (`StoreUnavailable`). `ImmediateWriter` is the
in-process double that writes in the caller's thread.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from observe.pipeline import ingest, kserve
from observe.pipeline.ingest import IngestCounts
from observe.schemas.record_table import RecordTable

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]
#: A batch of validated items; records may also come as one RecordTable.
Batch = Sequence[Any] | RecordTable


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class BatchKind(StrEnum):
    RECORDS = "records"
    LABELS = "labels"
    EVENTS = "events"
    METRICS = "metrics"
    SPANS = "spans"
    KSERVE = "kserve"  # payload-logger events (collectors.kserve.InferenceHalf), joined


class WriterOverloaded(Exception):
    """The write queue is full; the caller should retry later."""


class StoreUnavailable(Exception):
    """The database could not be reached or did not commit in time; retrying is safe."""


class WriterListener(Protocol):
    """Told about every batch outcome, e.g. to export metrics."""

    def on_commit(self, kind: str, counts: IngestCounts) -> None: ...

    def on_failure(self) -> None: ...

    def on_retry(self) -> None: ...

    def on_overload(self) -> None: ...

    def on_queue_change(self, delta_items: int) -> None: ...


@dataclass
class WriterStats:
    """Counts of what the writer did, passed on to an optional listener as they change."""

    batches_committed: int = 0
    batches_failed: int = 0
    items_new: dict[str, int] = field(default_factory=lambda: {k.value: 0 for k in BatchKind})
    items_duplicate: dict[str, int] = field(default_factory=lambda: {k.value: 0 for k in BatchKind})
    retries: int = 0
    rejected_overload: int = 0
    listener: WriterListener | None = None

    def committed(self, kind: BatchKind, counts: IngestCounts) -> None:
        self.batches_committed += 1
        self.items_new[kind.value] += counts.new
        self.items_duplicate[kind.value] += counts.duplicates
        if self.listener is not None:
            self.listener.on_commit(kind.value, counts)

    def failed(self) -> None:
        self.batches_failed += 1
        if self.listener is not None:
            self.listener.on_failure()

    def retried(self) -> None:
        self.retries += 1
        if self.listener is not None:
            self.listener.on_retry()

    def overloaded(self) -> None:
        self.rejected_overload += 1
        if self.listener is not None:
            self.listener.on_overload()

    def queue_changed(self, delta_items: int) -> None:
        if self.listener is not None:
            self.listener.on_queue_change(delta_items)


class Writer(Protocol):
    stats: WriterStats

    def submit(self, kind: BatchKind, items: Batch) -> Future[IngestCounts]: ...

    def queued_items(self) -> int: ...

    def start(self) -> None: ...

    def stop(self, timeout: float = ...) -> None: ...


def write_batch(
    session: Session,
    kind: BatchKind,
    items: Batch,
    *,
    rollup_tags: Sequence[str],
    now: dt.datetime,
) -> IngestCounts:
    """Store one batch of `kind` in the caller's transaction."""
    if kind is BatchKind.RECORDS:
        return ingest.store_records(session, items, rollup_tags=rollup_tags, now=now)
    if isinstance(items, RecordTable):
        raise TypeError(f"a RecordTable holds records, not {kind.value}")
    if kind is BatchKind.LABELS:
        return ingest.store_labels(session, items, now=now)
    if kind is BatchKind.EVENTS:
        return ingest.store_events(session, items, now=now)
    if kind is BatchKind.SPANS:
        return ingest.store_spans(session, items, now=now)
    if kind is BatchKind.KSERVE:
        return kserve.store_kserve_halves(session, items, rollup_tags=rollup_tags, now=now)
    return ingest.store_metric_samples(session, items, now=now)


class _Base:
    def __init__(
        self, sessions: sessionmaker[Session], *, rollup_tags: Sequence[str], clock: Clock = utc_now
    ) -> None:
        self._sessions = sessions
        self._rollup_tags = tuple(rollup_tags)
        self._clock = clock
        self.stats = WriterStats()

    def _commit(self, kind: BatchKind, items: Batch) -> IngestCounts:
        with self._sessions.begin() as session:
            counts = write_batch(
                session, kind, items, rollup_tags=self._rollup_tags, now=self._clock()
            )
        self.stats.committed(kind, counts)
        return counts


class ImmediateWriter(_Base):
    """Writes each batch in the calling thread; for the CLI and tests."""

    def submit(self, kind: BatchKind, items: Batch) -> Future[IngestCounts]:
        future: Future[IngestCounts] = Future()
        try:
            future.set_result(self._commit(kind, items))
        except Exception as error:
            self.stats.failed()
            future.set_exception(error)
        return future

    def queued_items(self) -> int:
        return 0

    def start(self) -> None:
        return None

    def stop(self, timeout: float = 0.0) -> None:
        return None


@dataclass
class _Job:
    kind: BatchKind
    items: Batch
    future: Future[IngestCounts]
    deadline: float


class BatchWriter(_Base):
    """Background threads writing queued batches, one transaction per batch.

    Args:
        sessions: write session factory.
        rollup_tags: tag keys that get their own latency rollups.
        num_threads: concurrent transactions (1 for SQLite, which has one writer anyway).
        max_queued_items: items (records, labels, ...) waiting before `submit` refuses more.
            A single batch larger than this is still taken when the queue is empty.
        write_timeout_seconds: how long a batch may wait and be retried before it fails.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        rollup_tags: Sequence[str],
        num_threads: int = 1,
        max_queued_items: int = 200_000,
        write_timeout_seconds: float = 30.0,
        clock: Clock = utc_now,
    ) -> None:
        super().__init__(sessions, rollup_tags=rollup_tags, clock=clock)
        self._num_threads = num_threads
        self._max_queued_items = max_queued_items
        self._write_timeout = write_timeout_seconds
        self._queue: deque[_Job] = deque()
        self._num_queued = 0
        self._condition = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._stopping = False

    def start(self) -> None:
        for number in range(self._num_threads):
            thread = threading.Thread(
                target=self._run, name=f"observe-writer-{number}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 30.0) -> None:
        """Write what is queued, then stop the threads."""
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def queued_items(self) -> int:
        return self._num_queued

    def submit(self, kind: BatchKind, items: Batch) -> Future[IngestCounts]:
        future: Future[IngestCounts] = Future()
        with self._condition:
            if self._stopping:
                raise StoreUnavailable("the server is shutting down")
            if self._num_queued and self._num_queued + len(items) > self._max_queued_items:
                self.stats.overloaded()
                raise WriterOverloaded(
                    f"{self._num_queued} items are waiting to be written; retry shortly"
                )
            deadline = time.monotonic() + self._write_timeout
            self._queue.append(_Job(kind, items, future, deadline))
            self._num_queued += len(items)
            self.stats.queue_changed(len(items))
            self._condition.notify()
        return future

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._queue and not self._stopping:
                    self._condition.wait()
                if not self._queue:
                    return
                job = self._queue.popleft()
            try:
                # A request that gave up waiting cancelled its future: its batch is not written.
                if job.future.set_running_or_notify_cancel():
                    job.future.set_result(self._commit_with_retries(job))
            except Exception as error:
                self.stats.failed()
                job.future.set_exception(error)
            finally:
                with self._condition:
                    self._num_queued -= len(job.items)
                    self.stats.queue_changed(-len(job.items))

    def _commit_with_retries(self, job: _Job) -> IngestCounts:
        delay = 0.1
        while True:
            try:
                return self._commit(job.kind, job.items)
            except (OperationalError, DBAPIError) as error:
                if not _is_transient(error):
                    raise
                if time.monotonic() + delay > job.deadline:
                    raise StoreUnavailable(
                        f"the database is unavailable: {_first_line(error)}"
                    ) from error
                self.stats.retried()
                log.warning("write failed, retrying in %.1fs: %s", delay, _first_line(error))
                time.sleep(delay)
                delay = min(delay * 2, 5.0)


def _is_transient(error: DBAPIError) -> bool:
    """Connection loss, lock timeouts, serialization failures and the like."""
    if error.connection_invalidated or isinstance(error, OperationalError):
        return True
    code = getattr(error.orig, "sqlstate", None) or ""
    return code.startswith(("08", "40", "53", "57P"))


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
