"""observe.pipeline.kserve: payload-logger halves joined into records in one transaction,
in either order, once, also when the halves reach two processes at the same moment."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import func, select

from collectors.kserve import InferenceHalf, KServePayloadError, decode_half, read_cloudevents
from observe.db.engine import Database
from observe.db.models import InferenceRecord, KServePair, LatencyRollup
from observe.pipeline.kserve import (
    KServeCounts,
    expire_kserve_pairs,
    store_kserve_halves,
    with_arrival_time,
)
from tests.http_fixtures import read_http

NOW = dt.datetime(2026, 11, 16, 14, 30, tzinfo=dt.UTC)
V1_ID = "0009174a-24a8-4603-b098-09c8799950e9"


def half(name: str, **overrides: str) -> InferenceHalf:
    request = read_http(name)
    [event] = read_cloudevents(request.headers, request.body)
    return decode_half(event, overrides=overrides)


def store(db: Database, halves: Sequence[InferenceHalf], now: dt.datetime = NOW) -> KServeCounts:
    with db.write_sessions.begin() as session:
        return store_kserve_halves(session, halves, rollup_tags=("endpoint",), now=now)


def stored_records(db: Database) -> list[InferenceRecord]:
    with db.sessions() as session:
        return list(session.scalars(select(InferenceRecord).order_by(InferenceRecord.request_id)))


def count(db: Database, table: Any, *conditions: Any) -> int:
    with db.sessions() as session:
        query = select(func.count()).select_from(table)
        return session.scalar(query.where(*conditions) if conditions else query) or 0


@pytest.mark.parametrize("response_first", [False, True])
def test_the_second_half_joins_the_first_into_records(db: Database, response_first: bool) -> None:
    request, response = half("v1-binary-request.http"), half("v1-binary-response.http")
    first, second = (response, request) if response_first else (request, response)

    assert store(db, [first]) == KServeCounts(1, 0, 0, 1)
    assert stored_records(db) == []
    assert store(db, [second]) == KServeCounts(1, 2, 0, 0)

    records = stored_records(db)
    assert [r.request_id for r in records] == [f"{V1_ID}#0", f"{V1_ID}#1"]
    assert [r.prediction for r in records] == [1, 1]
    assert records[0].features == {"0": 6.8, "1": 2.8, "2": 4.8, "3": 1.4}
    assert records[0].latency_ms == pytest.approx(42.784)
    assert (records[0].model, records[0].model_version) == ("sklearn-iris", "unknown")
    # the same path as POST /api/v1/records: rollups count the records
    with db.sessions() as session:
        rolled = session.scalar(
            select(func.sum(LatencyRollup.num_requests)).where(LatencyRollup.dim_key == "")
        )
    assert rolled == 2
    with db.sessions() as session:
        [pair] = session.scalars(select(KServePair)).all()
    assert (pair.request, pair.response, pair.joined_at) == (None, None, NOW)


def test_both_halves_in_one_batch(db: Database) -> None:
    halves = [half("seldon-binary-response.http"), half("seldon-binary-request.http")]

    assert store(db, halves) == KServeCounts(2, 2, 0, 0)
    assert len(stored_records(db)) == 2


def test_repeated_events_change_nothing_before_or_after_the_join(db: Database) -> None:
    request, response = half("v2-binary-request.http"), half("v2-binary-response.http")

    assert store(db, [request]) == KServeCounts(1, 0, 0, 1)
    assert store(db, [request]) == KServeCounts(1, 0, 1, 0)  # a redelivery while pending
    assert store(db, [response, request]) == KServeCounts(2, 3, 1, 0)
    assert store(db, [response]) == KServeCounts(1, 0, 1, 0)  # after the join
    assert store(db, [request, response]) == KServeCounts(2, 0, 2, 0)

    assert len(stored_records(db)) == 3
    assert count(db, KServePair) == 1


def test_a_pair_that_cannot_be_joined_is_refused_whole(db: Database) -> None:
    store(db, [half("errors/count-mismatch-request.http")])

    with pytest.raises(KServePayloadError, match="3 predictions for the 2 instances"):
        store(db, [half("v1-binary-request.http"), half("errors/count-mismatch-response.http")])

    # nothing of the refused batch: the other request is not stored, the pending one waits
    assert stored_records(db) == []
    with db.sessions() as session:
        pairs = session.scalars(select(KServePair)).all()
    assert [(p.event_id, p.request is not None, p.response) for p in pairs] == [
        ("1a2b3c4d-0000-4000-8000-00000000e002", True, None)
    ]


def test_a_record_the_records_api_would_refuse_names_its_field(db: Database) -> None:
    request = half("v1-structured-request.http", model="x" * 201)

    store(db, [request])
    with pytest.raises(KServePayloadError, match="instance 0: model: String should have at most"):
        store(db, [half("v1-structured-response.http")])


def test_an_event_without_a_time_is_timed_by_its_arrival(db: Database) -> None:
    request = dataclasses.replace(half("v1-structured-request.http"), time=None)
    response = dataclasses.replace(half("v1-structured-response.http"), time=None)

    store(db, [with_arrival_time(request, NOW)])
    store(db, [with_arrival_time(response, NOW + dt.timedelta(milliseconds=30))])

    [record] = stored_records(db)
    assert record.timestamp == NOW
    assert record.latency_ms == pytest.approx(30.0)


def test_halves_without_a_partner_expire_and_are_counted(db: Database) -> None:
    store(db, [half("v1-binary-request.http")], now=NOW)
    store(db, [half("seldon-binary-response.http")], now=NOW + dt.timedelta(seconds=200))
    store(db, [half("v2-binary-request.http"), half("v2-binary-response.http")], now=NOW)

    unpaired = expire_kserve_pairs(
        db.write_sessions, now=NOW + dt.timedelta(seconds=301), timeout_seconds=300
    )

    assert unpaired == {"request": 1, "response": 0}
    assert count(db, KServePair, KServePair.joined_at.is_(None)) == 1  # the seldon response
    # a late partner of the expired request now waits on its own
    assert store(db, [half("v1-binary-response.http")]) == KServeCounts(1, 0, 0, 1)
    # joined pairs are remembered for a day, then forgotten
    expire_kserve_pairs(db.write_sessions, now=NOW + dt.timedelta(days=2), timeout_seconds=300)
    assert count(db, KServePair) == 0
    assert len(stored_records(db)) == 3


def test_halves_arriving_at_two_processes_at_once_are_joined_once(db: Database) -> None:
    """The request's transaction holds the pair while the response's transaction, in another
    connection, tries to store its half: it must wait, then see the request and join."""
    request, response = half("v1-binary-request.http"), half("v1-binary-response.http")
    request_stored = threading.Event()
    release = threading.Event()
    results: dict[str, Any] = {}

    def store_request() -> None:
        with db.write_sessions.begin() as session:
            results["request"] = store_kserve_halves(session, [request], rollup_tags=(), now=NOW)
            request_stored.set()
            release.wait(10)

    def store_response() -> None:
        results["response"] = store(db, [response])

    first = threading.Thread(target=store_request)
    first.start()
    assert request_stored.wait(10)
    second = threading.Thread(target=store_response)
    second.start()
    second.join(0.5)
    assert second.is_alive(), "the response did not wait for the request's transaction"
    release.set()
    first.join(10)
    second.join(10)

    assert results == {"request": KServeCounts(1, 0, 0, 1), "response": KServeCounts(1, 2, 0, 0)}
    assert len(stored_records(db)) == 2
