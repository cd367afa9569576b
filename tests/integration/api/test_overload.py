"""Overload and outages: 429/503 with Retry-After, never a 500, and retries that stay safe.

The write path is driven with small Writer doubles (a full queue, a store that never commits,
a store that is down) and, end to end, with the real BatchWriter on a database whose
connections are refused.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from observe.db.engine import Database, create_database
from observe.pipeline.ingest import IngestCounts
from observe.pipeline.writer import BatchKind, StoreUnavailable, WriterOverloaded, WriterStats
from tests import factories
from tests.conftest import bearer, database_url
from tests.integration.api.helpers import INGEST_PATHS, app_client, row_counts

ITEMS = {
    "/api/v1/records": factories.records(3),
    "/api/v1/labels": [factories.label()],
    "/api/v1/events": [factories.event()],
    "/api/v1/metrics": [factories.metric()],
}


class DoubleWriter:
    """What every double shares: the Writer protocol around a `submit` of its own."""

    def __init__(self) -> None:
        self.stats = WriterStats()
        self.futures: list[Future[IngestCounts]] = []

    def submit(self, kind: BatchKind, items: Sequence[Any]) -> Future[IngestCounts]:
        raise NotImplementedError

    def queued_items(self) -> int:
        return sum(not future.done() for future in self.futures)

    def start(self) -> None:
        return None

    def stop(self, timeout: float = 0.0) -> None:
        return None


class OverloadedWriter(DoubleWriter):
    """A write queue that is always full."""

    def submit(self, kind: BatchKind, items: Sequence[Any]) -> Future[IngestCounts]:
        raise WriterOverloaded("1000 items are waiting to be written; retry shortly")


class StalledWriter(DoubleWriter):
    """Takes every batch and never commits it, like a database that stopped answering."""

    def submit(self, kind: BatchKind, items: Sequence[Any]) -> Future[IngestCounts]:
        future: Future[IngestCounts] = Future()
        self.futures.append(future)
        return future


class UnavailableWriter(DoubleWriter):
    """Refuses batches at once: the store is known to be down."""

    def submit(self, kind: BatchKind, items: Sequence[Any]) -> Future[IngestCounts]:
        raise StoreUnavailable("the database is unavailable")


class FailingWriter(DoubleWriter):
    """Takes batches and fails them the way a transaction does when the database drops."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def submit(self, kind: BatchKind, items: Sequence[Any]) -> Future[IngestCounts]:
        future: Future[IngestCounts] = Future()
        future.set_exception(self.error)
        self.futures.append(future)
        return future


def assert_retry_later(response: Any, statuses: tuple[int, ...]) -> None:
    assert response.status_code in statuses, response.text
    assert int(response.headers["Retry-After"]) >= 1
    assert isinstance(response.json()["detail"], str)


def test_a_full_write_queue_gets_429_with_retry_after(
    db: Database, tmp_path: Path, api_keys: dict[str, str]
) -> None:
    with app_client(db, tmp_path, writer=OverloadedWriter()) as client:
        for path in INGEST_PATHS:
            response = client.post(path, json=ITEMS[path], headers=bearer(api_keys["ingest"]))
            assert_retry_later(response, (429, 503))
        reads = client.get("/api/v1/models", headers=bearer(api_keys["read"]))

    assert reads.status_code == 200, "reads do not wait for the write queue"


def test_a_batch_not_committed_in_time_gets_503_and_is_withdrawn(
    db: Database, tmp_path: Path, api_keys: dict[str, str]
) -> None:
    writer = StalledWriter()
    with app_client(db, tmp_path, writer=writer, write_timeout_seconds=0.1) as client:
        for path in INGEST_PATHS:
            started = time.monotonic()
            response = client.post(path, json=ITEMS[path], headers=bearer(api_keys["ingest"]))
            assert_retry_later(response, (503,))
            assert time.monotonic() - started < 5, path

    assert len(writer.futures) == len(INGEST_PATHS)
    assert all(future.cancelled() for future in writer.futures), (
        "a batch answered with 503 must not be committed later"
    )


@pytest.mark.parametrize(
    "make_writer",
    [
        UnavailableWriter,
        lambda: FailingWriter(StoreUnavailable("the database is unavailable")),
        lambda: FailingWriter(
            OperationalError("INSERT ...", {}, Exception("server closed the connection"))
        ),
    ],
    ids=["refused-at-submit", "failed-in-transaction", "operational-error"],
)
def test_an_unavailable_database_gets_503_with_retry_after(
    db: Database, tmp_path: Path, api_keys: dict[str, str], make_writer: Any
) -> None:
    with app_client(db, tmp_path, writer=make_writer()) as client:
        for path in INGEST_PATHS:
            response = client.post(path, json=ITEMS[path], headers=bearer(api_keys["ingest"]))
            assert_retry_later(response, (503,))


class Switch:
    """Makes new connections of an engine fail, as if the database went away."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.is_down = False
        event.listen(database.engine, "do_connect", self._connect)

    def _connect(self, dialect: Any, *_args: Any) -> None:
        if self.is_down:
            raise dialect.loaded_dbapi.OperationalError("connection refused (database down)")

    def down(self) -> None:
        self.is_down = True
        self.database.engine.dispose()  # pooled connections go with it

    def up(self) -> None:
        self.is_down = False


@pytest.fixture
def switch(db: Database) -> Iterator[Switch]:
    """Its own engine on the test database, with a switch to take it down."""
    database = create_database(database_url(db))
    yield Switch(database)
    database.engine.dispose()


def test_a_database_outage_gets_503s_and_a_retry_afterwards_stores_the_batch_once(
    db: Database, tmp_path: Path, api_keys: dict[str, str], switch: Switch
) -> None:
    ingest, read = bearer(api_keys["ingest"]), bearer(api_keys["read"])
    batch = factories.records(20, prefix="outage")
    with app_client(
        db, tmp_path, engine=switch.database.engine, write_timeout_seconds=0.5
    ) as client:
        assert client.post("/api/v1/records", json=factories.records(5), headers=ingest).is_success
        assert client.get("/api/v1/models", headers=read).is_success
        switch.down()

        during = {
            "ingest": client.post("/api/v1/records", json=batch, headers=ingest),
            "models": client.get("/api/v1/models", headers=read),
            "records": client.get(
                "/api/v1/records", params={"model": "fraud-scorer"}, headers=read
            ),
            "new key": client.put(
                "/api/v1/models/fraud-scorer/slo", json={}, headers=bearer(api_keys["admin"])
            ),
        }
        health = client.get("/healthz")

        switch.up()
        retry = client.post("/api/v1/records", json=batch, headers=ingest)

    for name, response in during.items():
        assert response.status_code == 503, f"{name}: {response.status_code} {response.text}"
        assert int(response.headers["Retry-After"]) >= 1, name
    assert health.status_code == 503
    assert health.json()["database"] == "unavailable"
    assert retry.status_code == 200, retry.text
    assert retry.json()["accepted"] == 20
    assert row_counts(db)["inference_records"] == 25
