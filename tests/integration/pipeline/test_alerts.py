"""Alerts after the hourly analysis: one per incident with its top cause and triage link, a
resolved notice when it clears, no repeats across hourly runs or servers, and a delivery
failure never failing the analysis."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest

from observe.config import Settings
from observe.db.engine import Database
from observe.pipeline import alerts, analysis
from observe.pipeline.delivery import Deliverer, InMemoryChannel, alert_email, alert_payload
from observe.schemas.findings import FindingIn
from observe.storage import alerts as alert_store
from observe.storage import deliveries as delivery_store
from observe.storage import findings as finding_store
from tests.conftest import other_engines, run_in_threads
from tests.factories import T0, finding_in
from tests.integration.pipeline import latency_scenarios as scenarios

HOUR = dt.timedelta(hours=1)
NOW = T0 + scenarios.AFTER


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return scenarios.settings_for(settings).model_copy(
        update={"public_url": "https://observe.example.com"}
    )


def deliverer(db: Database, channel: InMemoryChannel) -> Deliverer:
    return Deliverer(db, {"webhook": channel}, "https://observe.example.com", 3)


def notify(db: Database, settings: Settings, channel: InMemoryChannel, now: dt.datetime) -> Any:
    return alerts.notify_incidents(db, settings=settings, now=now, deliverer=deliverer(db, channel))


def store(db: Database, *findings: FindingIn, now: dt.datetime = T0) -> None:
    with db.write_sessions.begin() as session:
        finding_store.upsert_findings(session, list(findings), now=now)


def resolve(db: Database, kind: str, *, keep: list[str], now: dt.datetime) -> None:
    with db.write_sessions.begin() as session:
        finding_store.resolve_findings(
            session, kind=kind, model="fraud-scorer", keep_keys=keep, now=now
        )


def logged(db: Database) -> list[tuple[str, str]]:
    with db.sessions() as session:
        return [(a.state, a.incident_key) for a in reversed(alert_store.load_alerts(session))]


def regression(**overrides: Any) -> FindingIn:
    details = {"series": "v2", "onset_at": T0.isoformat(), "regressions": []}
    return finding_in(details=details, **overrides)


def test_an_incident_alerts_once_while_it_lasts_and_once_when_it_clears(
    db: Database, settings: Settings
) -> None:
    channel = InMemoryChannel()
    store(db, regression())

    opened = notify(db, settings, channel, T0 + HOUR)
    for hour in range(2, 5):  # the analysis sees it again every hour
        store(db, regression(), now=T0 + hour * HOUR)
        assert notify(db, settings, channel, T0 + hour * HOUR).opened == []
    resolve(db, "latency_regression", keep=[], now=T0 + 5 * HOUR)
    cleared = notify(db, settings, channel, T0 + 5 * HOUR)
    after = notify(db, settings, channel, T0 + 6 * HOUR)

    key = regression().dedupe_key
    assert logged(db) == [("opened", key), ("resolved", key)]
    assert (len(opened.opened), len(cleared.resolved)) == (1, 1)
    assert after.opened == after.resolved == []
    first, last = channel.alerts
    assert first.summary == regression().summary
    assert first.details["since"] == T0.isoformat()
    assert first.details["link"] == (
        "https://observe.example.com/ui/triage?model=fraud-scorer"
        "&start=2026-11-16T12:00:00Z&end=2026-11-16T13:00:00Z"
    )
    assert last.summary == f"Resolved after 5 h: {regression().summary}"
    assert last.details["duration_seconds"] == 5 * 3600


def test_a_regression_that_cleared_before_it_was_seen_sends_nothing(
    db: Database, settings: Settings
) -> None:
    channel = InMemoryChannel()
    store(db, regression(status="resolved"))

    run = notify(db, settings, channel, T0 + HOUR)

    assert (run.opened, run.resolved, channel.alerts) == ([], [], [])


def drift(day: int, *, status: str = "open") -> FindingIn:
    start = T0.replace(hour=0) + dt.timedelta(days=day)
    return finding_in(
        kind="drift",
        model_version="v1",
        window_start=start,
        window_end=start + dt.timedelta(hours=20),
        status=status,
        severity=0.5,
        summary=f"fraud-scorer v1: 1 of 2 features drifted (day {day})",
        details={
            "features": [
                {
                    "feature": "amount",
                    "test": "wasserstein",
                    "statistic": 0.4,
                    "p_value": None,
                    "threshold": 0.1,
                    "drifted": True,
                },
                {
                    "feature": "country",
                    "test": "jensenshannon",
                    "statistic": 0.01,
                    "p_value": None,
                    "threshold": 0.1,
                    "drifted": False,
                },
            ]
        },
        dedupe_key=f"drift:fraud-scorer:v1:day{day}",
    )


def test_drift_over_several_days_is_one_incident(db: Database, settings: Settings) -> None:
    channel = InMemoryChannel()
    day = dt.timedelta(days=1)
    store(db, drift(0))
    notify(db, settings, channel, T0)
    for number in (1, 2):  # each day's finding replaces the day before's
        store(db, drift(number), now=T0 + number * day)
        resolve(db, "drift", keep=[drift(number).dedupe_key], now=T0 + number * day)
        assert notify(db, settings, channel, T0 + number * day).opened == []
    store(db, drift(3, status="ok"), now=T0 + 3 * day)
    resolve(db, "drift", keep=[drift(3).dedupe_key], now=T0 + 3 * day)
    cleared = notify(db, settings, channel, T0 + 3 * day)

    key = drift(0).dedupe_key
    assert logged(db) == [("opened", key), ("resolved", key)]
    assert len(cleared.resolved) == 1
    opened = channel.alerts[0]
    cause = opened.details["top_cause"]
    assert (cause["kind"], cause["scope"]) == ("data_drift", {"feature": "amount"})
    assert cause["summary"].startswith("amount drifted most (wasserstein 0.4, threshold 0.1)")


def test_slo_breaches_of_two_objectives_are_two_incidents(db: Database, settings: Settings) -> None:
    channel = InMemoryChannel()
    breaches = [
        finding_in(
            kind="slo_breach",
            model_version=None,
            summary=f"{objective} over its objective",
            details={"objective": objective, "since": T0.isoformat()},
            dedupe_key=f"slo_breach:{objective}",
        )
        for objective in ("latency", "error_rate")
    ]
    store(db, *breaches)

    run = notify(db, settings, channel, T0 + 2 * HOUR)
    again = notify(db, settings, channel, T0 + 3 * HOUR)

    assert len(run.opened) == 2
    assert again.opened == []
    assert sorted(a.summary for a in channel.alerts) == [
        "error_rate over its objective",
        "latency over its objective",
    ]
    # The breach's latest hour against the hour before it began.
    assert channel.alerts[0].details["window"] == {
        "start": (T0 + HOUR).isoformat(),
        "end": (T0 + 2 * HOUR).isoformat(),
    }


def test_two_servers_notifying_at_once_send_each_notice_once(
    db: Database, settings: Settings
) -> None:
    store(db, regression())
    channels = [InMemoryChannel() for _ in range(3)]
    barrier = threading.Barrier(len(channels))

    def run(other: Database, channel: InMemoryChannel) -> None:
        barrier.wait()
        alerts.notify_incidents(
            other, settings=settings, now=T0 + HOUR, deliverer=deliverer(other, channel)
        )

    with other_engines(db, len(channels)) as others:
        run_in_threads(run, zip(others, channels, strict=True))

    assert len(logged(db)) == 1
    assert sum(len(c.alerts) for c in channels) == 1


def test_a_failing_channel_keeps_the_alert_for_a_retry(db: Database, settings: Settings) -> None:
    channel = InMemoryChannel(failures=1)
    store(db, regression())

    notify(db, settings, channel, T0 + HOUR)
    with db.sessions() as session:
        [pending] = delivery_store.load_deliveries(session, statuses=["pending"])
    deliverer(db, channel).deliver_due(now=T0 + HOUR + dt.timedelta(minutes=1))

    assert pending.last_error == "webhook is down"
    assert len(channel.alerts) == 1
    assert len(logged(db)) == 1


def test_the_hourly_analysis_alerts_with_the_top_cause_and_never_repeats(
    db: Database, settings: Settings
) -> None:
    scenarios.store(db, *scenarios.canary_history())
    channel = InMemoryChannel()

    def after(now: dt.datetime) -> Any:
        return notify(db, settings, channel, now)

    runs = [
        analysis.run_scheduled_analysis(
            db,
            now=NOW + hour * HOUR,
            settings=settings,
            analyses=analysis.ANALYSES[:1],
            after=after,
        )
        for hour in range(3)
    ]

    assert all(run.ran for run in runs)
    regressions = [a for a in channel.alerts if a.kind == "latency_regression"]
    assert len(regressions) == 1
    [alert] = regressions
    assert alert.state == "opened"
    assert alert.model_version == "v2"
    cause = alert.details["top_cause"]
    assert (cause["kind"], cause["scope"]) == ("deploy", {"model_version": "v2"})
    assert "/ui/triage?model=fraud-scorer&start=2026-11-16T12:0" in alert.details["link"]
    payload = alert_payload(alert)
    assert payload["text"].startswith("[observe] opened: p")
    assert "*Likely cause:*" in payload["blocks"][0]["text"]["text"]
    mail = alert_email(alert, sender="a@example.com", to=["b@example.com"])
    assert mail["Subject"] == "[observe] opened: latency regression of fraud-scorer v2"


def test_failing_alerts_never_fail_the_analysis(db: Database, settings: Settings) -> None:
    scenarios.store(db, *scenarios.steady_history())

    def broken(now: dt.datetime) -> None:
        raise RuntimeError("the alert channel exploded")

    summary = analysis.run_scheduled_analysis(
        db, now=NOW, settings=settings, analyses=analysis.ANALYSES[:1], after=broken
    )

    assert summary.ran
    assert summary.failures == []
