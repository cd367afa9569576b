"""observe.storage.signals: events and metric samples, deduplicated, and their filtered reads."""

from __future__ import annotations

import datetime as dt
from typing import Any

from observe.db.engine import Database
from observe.storage import signals as signal_store
from tests.factories import T0, event_in, metric_in

RECEIVED_AT = T0 + dt.timedelta(hours=1)


def at(minutes: float) -> str:
    return (T0 + dt.timedelta(minutes=minutes)).isoformat()


def insert_events(db: Database, events: list[Any]) -> tuple[int, int]:
    with db.write_sessions.begin() as session:
        return signal_store.insert_events(session, events, received_at=RECEIVED_AT)


def insert_samples(db: Database, samples: list[Any]) -> tuple[int, int]:
    with db.write_sessions.begin() as session:
        return signal_store.insert_metric_samples(session, samples)


def load_events(db: Database, **filters: Any) -> list[Any]:
    with db.sessions() as session:
        return signal_store.load_events(session, **filters)


def test_identical_events_are_stored_once_within_and_across_batches(db: Database) -> None:
    deploy = event_in()
    same_instant = event_in(timestamp="2026-11-16T13:00:00+01:00")  # T0 in another offset
    other = event_in(description="roll out v2 again")

    assert insert_events(db, [deploy, same_instant, other]) == (2, 1)
    assert insert_events(db, [event_in(), event_in(kind="rollback")]) == (1, 1)

    stored = load_events(db)
    assert [(e.kind, e.description) for e in stored] == [
        ("deploy", "roll out v2"),
        ("deploy", "roll out v2 again"),
        ("rollback", "roll out v2"),
    ]
    assert stored[0].timestamp == T0
    assert stored[0].received_at == RECEIVED_AT
    assert (stored[0].model_version, stored[0].traffic_pct) == ("v2", 100)


def test_events_differing_only_in_tags_are_distinct(db: Database) -> None:
    batch = [event_in(tags={"cluster": "a"}), event_in(tags={"cluster": "b"}), event_in()]

    assert insert_events(db, batch) == (3, 0)
    assert insert_events(db, [event_in(tags={"cluster": "a"})]) == (0, 1)


def test_load_events_filters_by_model_window_and_kind(db: Database) -> None:
    insert_events(
        db,
        [
            event_in(timestamp=at(20), kind="config"),
            event_in(timestamp=at(0), kind="deploy"),
            event_in(timestamp=at(10), kind="canary", traffic_pct=5),
            event_in(timestamp=at(30), kind="rollback"),
            event_in(timestamp=at(10), model="ranker", kind="deploy"),
        ],
    )

    def kinds(**filters: Any) -> list[str]:
        return [e.kind for e in load_events(db, **filters)]

    assert kinds(model="fraud-scorer") == ["deploy", "canary", "config", "rollback"]
    assert kinds() == ["deploy", "canary", "deploy", "config", "rollback"]
    assert kinds(model="ranker") == ["deploy"]
    window = {"start": T0 + dt.timedelta(minutes=10), "end": T0 + dt.timedelta(minutes=30)}
    assert kinds(model="fraud-scorer", **window) == ["canary", "config"]  # end excluded
    assert kinds(model="fraud-scorer", kinds=["deploy", "rollback"]) == ["deploy", "rollback"]
    assert kinds(model="fraud-scorer", kinds=["scale"]) == []


def test_metric_samples_are_deduplicated_by_host_resource_name_and_time(db: Database) -> None:
    batch = [
        metric_in(value=87.0),
        metric_in(value=12.0),  # same series and time: a repeat, the first value is kept
        metric_in(timestamp="2026-11-16T07:00:00-05:00", value=55.0),  # T0 again
        metric_in(host="gpu-2", value=50.0),
        metric_in(resource="gpu1", value=51.0),
        metric_in(name="gpu_temperature_c", value=71.0),
        metric_in(timestamp=at(1), value=90.0),
    ]

    assert insert_samples(db, batch) == (5, 2)
    assert insert_samples(db, [metric_in(value=1.0), metric_in(timestamp=at(2))]) == (1, 1)

    with db.sessions() as session:
        frame = signal_store.load_metric_samples(session, start=T0, end=T0 + dt.timedelta(hours=1))
    assert len(frame) == 6
    first = frame[(frame["host"] == "gpu-1") & (frame["resource"] == "gpu0")]
    first = first[first["name"] == "gpu_utilization_pct"]
    assert first["value"].tolist() == [87.0, 90.0, 87.0]


def test_load_metric_samples_filters_by_window_names_and_hosts(db: Database) -> None:
    insert_samples(
        db,
        [
            metric_in(timestamp=at(2), host="gpu-1", value=2.0, tags={"pod": "a"}),
            metric_in(timestamp=at(0), host="gpu-1", value=0.0),
            metric_in(timestamp=at(1), host="gpu-2", value=1.0),
            metric_in(timestamp=at(1), host="gpu-2", name="gpu_memory_used_mb", value=4096.0),
            metric_in(timestamp=at(3), host="gpu-3", value=3.0),
        ],
    )

    def load(**filters: Any) -> Any:
        with db.sessions() as session:
            return signal_store.load_metric_samples(
                session,
                start=filters.pop("start", T0),
                end=filters.pop("end", T0 + dt.timedelta(hours=1)),
                **filters,
            )

    everything = load()
    assert list(everything.columns) == ["timestamp", "host", "resource", "name", "value", "tags"]
    assert everything["timestamp"].is_monotonic_increasing
    assert sorted(everything["value"]) == [0.0, 1.0, 2.0, 3.0, 4096.0]
    tagged = everything[everything["value"] == 2.0].iloc[0]
    assert tagged["tags"] == {"pod": "a"}
    assert tagged["timestamp"] == T0 + dt.timedelta(minutes=2)

    assert load(names=["gpu_memory_used_mb"])["value"].tolist() == [4096.0]
    assert load(hosts=["gpu-1", "gpu-3"])["value"].tolist() == [0.0, 2.0, 3.0]
    assert load(hosts=["gpu-2"], names=["gpu_utilization_pct"])["value"].tolist() == [1.0]
    window = load(start=T0 + dt.timedelta(minutes=1), end=T0 + dt.timedelta(minutes=3))
    assert sorted(window["value"]) == [1.0, 2.0, 4096.0]
    assert load(hosts=["gpu-9"]).empty


def test_an_empty_batch_stores_nothing(db: Database) -> None:
    assert insert_events(db, []) == (0, 0)
    assert insert_samples(db, []) == (0, 0)

    assert load_events(db) == []
