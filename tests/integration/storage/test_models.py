"""observe.storage.models: the model registry, version first/last seen, SLOs, deletion."""

from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from observe.db.engine import Database
from observe.db.models import (
    Event,
    Finding,
    InferenceRecord,
    Label,
    LatencyRollup,
    MetricSample,
    Model,
    ModelVersion,
    ProfileChunk,
    ProfileOperator,
    ProfilerTrace,
    ReferenceDataset,
    ReferenceRow,
    Span,
)
from observe.pipeline import ingest
from observe.storage import models as model_store
from observe.storage import signals as signal_store
from observe.storage.models import VersionSeen
from tests.factories import T0, event_in, metric_in, records_in

NOW = T0 + dt.timedelta(days=1)


def minutes(value: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=value)


def see(db: Database, *seen: VersionSeen, now: dt.datetime = NOW) -> None:
    with db.write_sessions.begin() as session:
        model_store.record_versions_seen(session, seen, now=now)


def versions(db: Database, model: str = "fraud-scorer") -> dict[str, tuple[dt.datetime, ...]]:
    with db.sessions() as session:
        info = model_store.get_model(session, model)
    assert info is not None
    return {v.model_version: (v.first_seen_at, v.last_seen_at) for v in info.versions}


def test_version_first_and_last_seen_only_widen(db: Database) -> None:
    see(db, VersionSeen("fraud-scorer", "v1", minutes(10), minutes(20)))
    assert versions(db) == {"v1": (minutes(10), minutes(20))}

    see(db, VersionSeen("fraud-scorer", "v1", minutes(5), minutes(15)))
    assert versions(db) == {"v1": (minutes(5), minutes(20))}

    see(db, VersionSeen("fraud-scorer", "v1", minutes(12), minutes(30)))
    assert versions(db) == {"v1": (minutes(5), minutes(30))}

    see(db, VersionSeen("fraud-scorer", "v1", minutes(6), minutes(29)))  # inside: no change
    see(db, VersionSeen("fraud-scorer", "v1", minutes(-60), minutes(90)))
    assert versions(db) == {"v1": (minutes(-60), minutes(90))}


def test_models_are_registered_once_with_their_first_registration_time(db: Database) -> None:
    later = NOW + dt.timedelta(days=3)
    see(db, VersionSeen("fraud-scorer", "v1", minutes(0), minutes(1)))
    see(
        db,
        VersionSeen("fraud-scorer", "v2", minutes(30), minutes(40)),
        VersionSeen("ranker", "2024-01", minutes(0), minutes(0)),
        now=later,
    )

    with db.sessions() as session:
        models = model_store.list_models(session)
        assert session.scalar(select(func.count()).select_from(Model)) == 2
    assert [(m.name, m.created_at) for m in models] == [("fraud-scorer", NOW), ("ranker", later)]
    assert [v.model_version for v in models[0].versions] == ["v1", "v2"]  # oldest first
    assert models[1].versions == [VersionSeen("ranker", "2024-01", minutes(0), minutes(0))]
    assert models[0].slo == model_store.Slo(None, None, None, None)


def test_get_model_of_an_unknown_name_is_none(db: Database) -> None:
    with db.sessions() as session:
        assert model_store.get_model(session, "nope") is None
        assert model_store.list_models(session) == []


def set_slo(db: Database, name: str, now: dt.datetime = NOW, **values: float | None) -> object:
    arguments = {"latency_percentile": None, "latency_ms": None, "error_rate_pct": None} | values
    with db.write_sessions.begin() as session:
        return model_store.set_slo(session, name, now=now, **arguments)


def test_set_slo_creates_the_model_updates_and_clears_it(db: Database) -> None:
    created = set_slo(db, "ranker", latency_percentile=95, latency_ms=250, error_rate_pct=1.0)
    assert created == model_store.Slo(95, 250, 1.0, NOW)

    later = NOW + dt.timedelta(hours=2)
    set_slo(db, "ranker", now=later, latency_percentile=99, latency_ms=400, error_rate_pct=0.5)
    with db.sessions() as session:
        info = model_store.get_model(session, "ranker")
    assert info is not None
    assert (info.created_at, info.versions) == (NOW, [])
    assert info.slo == model_store.Slo(99, 400, 0.5, later)

    cleared = NOW + dt.timedelta(hours=3)
    assert set_slo(db, "ranker", now=cleared) == model_store.Slo(None, None, None, cleared)
    with db.sessions() as session:
        stored = model_store.get_model(session, "ranker")
    assert stored is not None
    assert stored.slo == model_store.Slo(None, None, None, cleared)


def test_set_slo_keeps_the_versions_of_a_known_model(db: Database) -> None:
    see(db, VersionSeen("fraud-scorer", "v1", minutes(0), minutes(5)))

    set_slo(db, "fraud-scorer", error_rate_pct=2.0)

    assert versions(db) == {"v1": (minutes(0), minutes(5))}
    with db.sessions() as session:
        info = model_store.get_model(session, "fraud-scorer")
    assert info is not None
    assert info.slo.error_rate_pct == 2.0


MODEL_TABLES = (Finding, Span, ProfilerTrace, ReferenceDataset)
#: Rows that belong to a model through a foreign key (deleted by cascade).
DEPENDENT_TABLES = (ProfileChunk, ProfileOperator, ReferenceRow)


def add_artifacts(session: Session, model: str) -> None:
    """A finding, a span, a profiler trace and a reference dataset of `model`, with children."""
    profile = ProfilerTrace(
        model=model,
        model_version="v1",
        host="gpu-1",
        captured_at=T0,
        received_at=NOW,
        sha256=hashlib.sha256(model.encode()).hexdigest(),
        num_bytes=3,
        num_events=1,
    )
    reference = ReferenceDataset(
        model=model,
        model_version="v1",
        name="training",
        created_at=NOW,
        num_rows=1,
        num_rows_stored=1,
        feature_types={"amount": "numeric"},
    )
    finding = Finding(
        kind="drift",
        model=model,
        window_start=T0,
        window_end=NOW,
        created_at=NOW,
        updated_at=NOW,
        status="open",
        summary="amount drifted",
        dedupe_key=f"drift-{model}",
    )
    span = Span(
        trace_id=hashlib.md5(model.encode()).hexdigest(),
        span_id="00f067aa0ba902b7",
        service_name=model,
        name="predict",
        kind="server",
        start_at=T0,
        end_at=T0,
        duration_ms=0.0,
        status_code="ok",
        model=model,
        received_at=NOW,
    )
    session.add_all([profile, reference, finding, span])
    session.flush()
    session.add_all(
        [
            ProfileChunk(profile_id=profile.id, seq=0, data=b"abc"),
            ProfileOperator(
                profile_id=profile.id,
                name="aten::matmul",
                category="cpu_op",
                count=1,
                total_us=5.0,
                self_us=5.0,
            ),
            ReferenceRow(dataset_id=reference.id, row_index=0, features={"amount": 1.0}),
        ]
    )


def count(db: Database, model: type) -> int:
    with db.sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_delete_models_removes_everything_of_those_models_only(db: Database) -> None:
    with db.write_sessions.begin() as session:
        for model in ("fraud-scorer", "ranker", "demo"):
            ingest.store_records(
                session, records_in(30, model=model, label=1), rollup_tags=("host",), now=NOW
            )
            signal_store.insert_events(session, [event_in(model=model)], received_at=NOW)
            add_artifacts(session, model)
        signal_store.insert_metric_samples(
            session, [metric_in(host=h) for h in ("gpu-1", "gpu-2", "gpu-3")]
        )
        model_store.set_slo(
            session, "ranker", latency_percentile=None, latency_ms=None, error_rate_pct=1, now=NOW
        )
    per_model = {
        table: count(db, table) // 3
        for table in (InferenceRecord, Label, LatencyRollup, *DEPENDENT_TABLES)
    }

    with db.write_sessions.begin() as session:
        model_store.delete_models(session, ["fraud-scorer", "demo"], hosts=["gpu-1", "gpu-2"])

    with db.sessions() as session:
        assert [m.name for m in model_store.list_models(session)] == ["ranker"]
        for table in (InferenceRecord, Label, LatencyRollup, Event, ModelVersion, *MODEL_TABLES):
            assert set(session.scalars(select(table.model))) == {"ranker"}
        assert list(session.scalars(select(MetricSample.host))) == ["gpu-3"]
    for kept, number in per_model.items():
        assert count(db, kept) == number > 0


def test_delete_models_of_nothing_known_deletes_nothing(db: Database) -> None:
    see(db, VersionSeen("fraud-scorer", "v1", minutes(0), minutes(1)))

    with db.write_sessions.begin() as session:
        model_store.delete_models(session, [])
        model_store.delete_models(session, ["unknown"], hosts=["unknown"])

    assert count(db, ModelVersion) == 1
    assert count(db, Model) == 1
