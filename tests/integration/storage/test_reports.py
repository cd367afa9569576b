"""observe.storage.reports, deliveries and alerts: each week's report, each alert state and
each delivery is stored once, and a due delivery is claimed by one sender."""

from __future__ import annotations

import datetime as dt
import threading

from observe.db.engine import Database
from observe.storage import alerts as alert_store
from observe.storage import deliveries as delivery_store
from observe.storage import models as model_store
from observe.storage import reports as report_store
from observe.storage.alerts import NewAlert
from tests.conftest import other_engines, run_in_threads
from tests.factories import T0

WEEK_START = dt.datetime(2026, 11, 16, tzinfo=dt.UTC)
CONTENT = {"kind": "model", "needs_attention": [{"summary": "a"}, {"summary": "b"}]}


def insert(
    db: Database, model: str | None, *, week: str = "2026-W47", owner: str = "a"
) -> int | None:
    with db.write_sessions.begin() as session:
        return report_store.insert_report(
            session,
            week=week,
            week_start=WEEK_START,
            model=model,
            content=CONTENT if model else {"kind": "summary", "needs_attention": []},
            now=T0,
            owner=owner,
        )


def test_a_week_has_one_report_per_model_and_one_summary(db: Database) -> None:
    first = insert(db, "fraud-scorer")

    assert first is not None
    assert insert(db, "fraud-scorer", owner="b") is None
    assert insert(db, None) is not None
    assert insert(db, None, owner="b") is None
    assert insert(db, "fraud-scorer", week="2026-W46") is not None
    with db.sessions() as session:
        listed = report_store.list_reports(session)
        week = report_store.load_week_reports(session, "2026-W47")
        found = report_store.find_report(session, week="2026-W47", model="fraud-scorer")
        assert report_store.stored_weeks(session, ["2026-W46", "2026-W47"]) == {"2026-W47"}
    assert [(r.week, r.kind, r.model) for r in week] == [
        ("2026-W47", "summary", None),
        ("2026-W47", "model", "fraud-scorer"),
    ]
    assert {r.week for r in listed} == {"2026-W46", "2026-W47"}
    assert all(r.content is None for r in listed)
    assert found is not None
    assert found.id == first
    assert found.created_by == "a"
    assert found.content == CONTENT
    assert found.num_needs_attention == 2


def test_racing_writers_store_a_week_once(db: Database) -> None:
    results: list[int | None] = []
    barrier = threading.Barrier(4)

    def write(other: Database, owner: str) -> None:
        barrier.wait()
        results.append(insert(other, "fraud-scorer", owner=owner))

    with other_engines(db, 4) as engines:
        run_in_threads(write, ((e, f"p{i}") for i, e in enumerate(engines)))

    assert sum(r is not None for r in results) == 1
    with db.sessions() as session:
        assert len(report_store.list_reports(session)) == 1


def test_replacing_a_report_keeps_its_id(db: Database) -> None:
    report_id = insert(db, "fraud-scorer")
    assert report_id is not None
    with db.write_sessions.begin() as session:
        report_store.replace_report_content(
            session, report_id, {"needs_attention": []}, now=T0 + dt.timedelta(hours=1), owner="z"
        )
    with db.sessions() as session:
        stored = report_store.get_report(session, report_id)
    assert stored is not None
    assert (stored.num_needs_attention, stored.created_by) == (0, "z")
    assert stored.created_at == T0 + dt.timedelta(hours=1)


def enqueue(db: Database, **subject: object) -> None:
    with db.write_sessions.begin() as session:
        delivery_store.enqueue_deliveries(
            session,
            channels=["directory", "webhook"],
            now=T0,
            **subject,  # type: ignore[arg-type]
        )


def claim(db: Database, now: dt.datetime) -> list[delivery_store.DeliveryRow]:
    with db.write_sessions.begin() as session:
        return delivery_store.claim_due_deliveries(session, now=now, lease_seconds=600)


def test_a_due_delivery_is_claimed_once_and_counts_its_attempts(db: Database) -> None:
    enqueue(db, week="2026-W47")
    enqueue(db, week="2026-W47")  # queued twice: still one per channel

    first = claim(db, T0)
    again = claim(db, T0 + dt.timedelta(minutes=5))  # within the lease: nothing to claim

    assert sorted(d.channel for d in first) == ["directory", "webhook"]
    assert all(d.attempts == 1 for d in first)
    assert again == []
    webhook = next(d for d in first if d.channel == "webhook")
    directory = next(d for d in first if d.channel == "directory")
    with db.write_sessions.begin() as session:
        delivery_store.record_delivery_sent(session, directory.id, now=T0)
        delivery_store.record_delivery_failure(
            session, webhook.id, error="HTTP 500", now=T0, retry_at=T0 + dt.timedelta(minutes=1)
        )
    retried = claim(db, T0 + dt.timedelta(minutes=1))
    assert [(d.channel, d.attempts, d.last_error) for d in retried] == [("webhook", 2, "HTTP 500")]
    with db.write_sessions.begin() as session:
        delivery_store.record_delivery_failure(
            session, webhook.id, error="HTTP 503", now=T0, retry_at=None
        )
    assert claim(db, T0 + dt.timedelta(days=1)) == []
    with db.sessions() as session:
        rows = delivery_store.load_deliveries(session, weeks=["2026-W47"])
    assert [(d.channel, d.status, d.last_error) for d in rows] == [
        ("directory", "sent", None),
        ("webhook", "failed", "HTTP 503"),
    ]


def test_a_lease_that_runs_out_lets_another_sender_retry(db: Database) -> None:
    enqueue(db, week="2026-W47")
    claim(db, T0)  # the sender dies without recording anything

    assert len(claim(db, T0 + dt.timedelta(minutes=11))) == 2


def test_requeueing_makes_a_sent_delivery_pending_with_fresh_attempts(db: Database) -> None:
    enqueue(db, week="2026-W47")
    for delivery in claim(db, T0):
        with db.write_sessions.begin() as session:
            delivery_store.record_delivery_sent(session, delivery.id, now=T0)
    with db.write_sessions.begin() as session:
        delivery_store.enqueue_deliveries(
            session,
            channels=["webhook"],
            now=T0 + dt.timedelta(hours=1),
            week="2026-W47",
            requeue=True,
        )
    again = claim(db, T0 + dt.timedelta(hours=1))
    assert [(d.channel, d.attempts) for d in again] == [("webhook", 1)]


def test_racing_senders_claim_each_delivery_once(db: Database) -> None:
    for week in ("2026-W45", "2026-W46", "2026-W47"):
        enqueue(db, week=week)
    claimed: list[int] = []
    barrier = threading.Barrier(3)

    def send(other: Database) -> None:
        barrier.wait()
        claimed.extend(d.id for d in claim(other, T0))

    with other_engines(db, 3) as engines:
        run_in_threads(send, ((e,) for e in engines))

    assert len(claimed) == 6
    assert len(set(claimed)) == 6


def alert(state: str, key: str = "latency_regression:abc", model: str = "fraud-scorer") -> NewAlert:
    return NewAlert(
        incident_key=key,
        subject="s-" + key,
        state=state,
        kind="latency_regression",
        model=model,
        model_version="v2",
        finding_id=7,
        summary=f"{state}: p95 rose",
        details={"since": T0.isoformat()},
    )


def log_alert(db: Database, new: NewAlert, now: dt.datetime = T0) -> int | None:
    with db.write_sessions.begin() as session:
        return alert_store.insert_alert(session, new, now=now)


def test_each_incident_state_is_logged_once_and_open_incidents_are_those_unresolved(
    db: Database,
) -> None:
    opened = log_alert(db, alert("opened"))
    assert opened is not None
    assert log_alert(db, alert("opened")) is None
    other = log_alert(db, alert("opened", key="slo_breach:x"))

    with db.sessions() as session:
        assert [a.id for a in alert_store.load_open_incidents(session)] == [opened, other]
    resolved = log_alert(db, alert("resolved"), T0 + dt.timedelta(hours=2))
    assert resolved is not None
    assert log_alert(db, alert("resolved")) is None

    with db.sessions() as session:
        assert [a.id for a in alert_store.load_open_incidents(session)] == [other]
        newest = alert_store.load_alerts(session)
        only_resolved = alert_store.load_alerts(session, states=["resolved"])
    assert [a.id for a in newest] == [resolved, other, opened]
    assert [a.id for a in only_resolved] == [resolved]


def test_deleting_a_model_deletes_its_reports_and_alerts_but_keeps_summaries(
    db: Database,
) -> None:
    insert(db, "fraud-scorer")
    insert(db, "ranker")
    insert(db, None)
    alert_id = log_alert(db, alert("opened"))
    enqueue(db, alert_id=alert_id)
    log_alert(db, alert("opened", key="r", model="ranker"))

    with db.write_sessions.begin() as session:
        model_store.delete_models(session, ["fraud-scorer"])

    with db.sessions() as session:
        kept = report_store.list_reports(session)
        alerts = alert_store.load_alerts(session)
        deliveries = delivery_store.load_deliveries(session)
    assert sorted((r.kind, r.model or "") for r in kept) == [("model", "ranker"), ("summary", "")]
    assert [a.model for a in alerts] == ["ranker"]
    assert deliveries == []
