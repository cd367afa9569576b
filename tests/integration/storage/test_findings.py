"""observe.storage.findings: upsert by dedupe key, resolution, filtered reads."""

from __future__ import annotations

import datetime as dt
from typing import Any

from observe.db.engine import Database
from observe.storage import findings as finding_store
from tests.factories import T0, finding_in

NOW = T0 + dt.timedelta(hours=2)


def upsert(db: Database, findings: list[Any], now: dt.datetime = NOW) -> list[int]:
    with db.write_sessions.begin() as session:
        return finding_store.upsert_findings(session, findings, now=now)


def load(db: Database, **filters: Any) -> list[Any]:
    with db.sessions() as session:
        return finding_store.load_findings(session, **filters)


def test_reanalysing_an_incident_updates_its_finding(db: Database) -> None:
    [first_id] = upsert(db, [finding_in()])
    later = NOW + dt.timedelta(hours=1)
    worse = finding_in(severity=0.9, summary="worse", window_end=T0 + dt.timedelta(hours=2))

    [second_id] = upsert(db, [worse], now=later)

    [stored] = load(db)
    assert second_id == first_id == stored.id
    assert (stored.severity, stored.summary) == (0.9, "worse")
    assert stored.window_end == T0 + dt.timedelta(hours=2)
    assert (stored.created_at, stored.updated_at) == (NOW, later)


def test_ids_come_back_in_the_order_given(db: Database) -> None:
    a, b = finding_in(dedupe_key="a"), finding_in(dedupe_key="b", kind="drift")

    ids = upsert(db, [a, b])
    again = upsert(db, [b, a])

    assert again == ids[::-1]
    assert len(set(ids)) == 2


def test_resolve_keeps_the_incidents_still_seen(db: Database) -> None:
    upsert(
        db,
        [
            finding_in(dedupe_key="seen"),
            finding_in(dedupe_key="gone"),
            finding_in(dedupe_key="other-model", model="ranker"),
            finding_in(dedupe_key="other-kind", kind="drift"),
        ],
    )

    with db.write_sessions.begin() as session:
        num_resolved = finding_store.resolve_findings(
            session, kind="latency_regression", model="fraud-scorer", keep_keys=["seen"], now=NOW
        )

    statuses = {f.dedupe_key: f.status for f in load(db)}
    assert num_resolved == 1
    assert statuses == {
        "seen": "open",
        "gone": "resolved",
        "other-model": "open",
        "other-kind": "open",
    }


def test_filters_by_model_kind_status_and_overlapping_window(db: Database) -> None:
    hour = dt.timedelta(hours=1)
    upsert(
        db,
        [
            finding_in(dedupe_key="early", window_start=T0, window_end=T0 + hour),
            finding_in(dedupe_key="late", window_start=T0 + 3 * hour, window_end=T0 + 4 * hour),
            finding_in(dedupe_key="drift", kind="drift", status="ok"),
            finding_in(dedupe_key="ranker", model="ranker"),
        ],
    )

    def keys(**filters: Any) -> set[str]:
        return {f.dedupe_key for f in load(db, **filters)}

    assert keys(model="ranker") == {"ranker"}
    assert keys(kinds=["drift"]) == {"drift"}
    assert keys(statuses=["ok"]) == {"drift"}
    assert keys(start=T0 + 2 * hour) == {"late"}
    assert keys(end=T0 + 2 * hour) == {"early", "drift", "ranker"}
    assert len(load(db, limit=2)) == 2
