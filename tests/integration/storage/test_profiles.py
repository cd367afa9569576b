"""Profiler traces in storage on both databases: stored whole, read back, found by version and
time, deduplicated by SHA-256, diffed by version, deleted with everything they own."""

from __future__ import annotations

import datetime as dt
import gzip
import io
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select

from observe.db.engine import Database
from observe.db.models import (
    ProfileChunk,
    ProfileOperator,
    ProfilerTrace,
    ProfileStep,
    ProfileTimelineChunk,
)
from observe.pipeline import profiles as pipeline
from observe.schemas.profiles import ProfileMeta
from observe.storage import profiles as store

DATA = Path(__file__).parents[2] / "data"
T0 = dt.datetime(2026, 11, 16, 12, 0, tzinfo=dt.UTC)
PROFILE_TABLES = (ProfilerTrace, ProfileChunk, ProfileOperator, ProfileStep, ProfileTimelineChunk)


def stored(
    db: Database, version: str, *, captured_at: dt.datetime | None = None, data: bytes | None = None
) -> pipeline.StoredProfile:
    source = DATA / f"profile_{version}.json.gz"
    meta = ProfileMeta(
        model="fraud-scorer", model_version=version, host="gpu-1", captured_at=captured_at
    )
    packed = pipeline.pack_trace(io.BytesIO(data if data is not None else source.read_bytes()))
    try:
        return pipeline.store_trace(db.write_sessions, packed, meta, now=T0)
    finally:
        packed.close()


def counts(db: Database) -> dict[str, int]:
    with db.sessions() as session:
        return {
            table.__tablename__: session.scalar(select(func.count()).select_from(table)) or 0
            for table in PROFILE_TABLES
        }


def test_a_trace_is_stored_with_its_summary_chunks_and_timeline(db: Database) -> None:
    result = stored(db, "v1")
    profile = result.profile

    assert not result.duplicate
    assert (profile.model, profile.model_version, profile.host) == ("fraud-scorer", "v1", "gpu-1")
    assert (profile.num_operators, profile.num_steps, profile.num_events) == (12, 5, 126)
    assert profile.captured_at.year >= 2026  # from the trace's baseTimeNanoseconds
    assert counts(db) == {
        "profiler_traces": 1,
        "profile_chunks": 1,
        "profile_operators": 12,
        "profile_steps": 5,
        "profile_timeline_chunks": 2,  # one per thread
    }
    with db.sessions() as session:
        raw = b"".join(store.iter_raw_chunks(session, profile.id))
        top = store.load_operators(session, profile.id, categories=["cpu_op"], limit=2)
        steps = store.load_steps(session, profile.id)
    assert gzip.decompress(raw) == gzip.decompress((DATA / "profile_v1.json.gz").read_bytes())
    assert [op.name for op in top] == ["aten::addmm", "aten::transpose"]
    assert {op.category for op in top} == {"cpu_op"}
    assert [step.step for step in steps] == [1, 2, 3, 4, 5]


def test_operators_sort_by_each_column(db: Database) -> None:
    profile_id = stored(db, "v2").profile.id
    with db.sessions() as session:
        by_count = store.load_operators(session, profile_id, sort="count")
        by_name = store.load_operators(session, profile_id, sort="name")
        by_total = store.load_operators(session, profile_id, sort="total_us")

    assert [op.count for op in by_count] == sorted((op.count for op in by_count), reverse=True)
    assert [op.name for op in by_name] == sorted(op.name for op in by_name)
    assert by_total[0].name == "PyTorch Profiler (0)"


def test_a_large_trace_is_stored_in_several_gzip_chunks(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "RAW_CHUNK_BYTES", 4096)
    monkeypatch.setattr(pipeline, "TIMELINE_CHUNK_EVENTS", 10)
    profile = stored(db, "v2").profile
    plain = gzip.decompress((DATA / "profile_v2.json.gz").read_bytes())

    assert counts(db)["profile_chunks"] == -(-len(plain) // 4096)
    with db.sessions() as session:
        raw = b"".join(store.iter_raw_chunks(session, profile.id))
        timeline = pipeline.load_timeline(session, profile, limit=10_000)
    assert gzip.decompress(raw) == plain
    assert timeline is not None
    assert len(timeline.events) == profile.num_complete_events


def test_the_same_file_is_stored_once(db: Database) -> None:
    first = stored(db, "v1")
    plain = gzip.decompress((DATA / "profile_v1.json.gz").read_bytes())
    again = stored(db, "v1", data=plain)  # the same trace, not gzipped this time

    assert again.duplicate
    assert again.profile.id == first.profile.id
    assert counts(db)["profiler_traces"] == 1


def test_find_latest_profile_of_a_version_near_a_time(db: Database) -> None:
    early = stored(db, "v1", captured_at=T0).profile
    late = stored(db, "v2", captured_at=T0 + dt.timedelta(hours=2)).profile
    with db.write_sessions.begin() as session:  # a second v2 trace: move it to another version
        session.execute(
            ProfilerTrace.__table__.update()
            .where(ProfilerTrace.id == late.id)
            .values(model_version="v1")
        )
    with db.sessions() as session:
        latest = store.find_latest_profile(session, "fraud-scorer", "v1")
        before = store.find_latest_profile(session, "fraud-scorer", "v1", near=T0)
        between = store.find_latest_profile(
            session, "fraud-scorer", "v1", near=T0 + dt.timedelta(hours=1)
        )
        first_after = store.find_latest_profile(
            session, "fraud-scorer", "v1", near=T0 - dt.timedelta(days=1)
        )
        none = store.find_latest_profile(session, "fraud-scorer", "v9")
        other_host = store.find_latest_profile(session, "fraud-scorer", "v1", host="gpu-2")

    assert latest is not None
    assert latest.id == late.id
    assert before is not None
    assert before.id == early.id
    assert between is not None
    assert between.id == early.id
    assert first_after is not None
    assert first_after.id == early.id
    assert none is None
    assert other_host is None


def test_list_profiles_filters_and_orders(db: Database) -> None:
    v1 = stored(db, "v1", captured_at=T0).profile
    v2 = stored(db, "v2", captured_at=T0 + dt.timedelta(hours=1)).profile
    with db.sessions() as session:
        everything = store.list_profiles(session)
        only_v1 = store.list_profiles(session, model_version="v1")
        window = store.list_profiles(session, start=T0 + dt.timedelta(minutes=30))
        other_model = store.list_profiles(session, model="other")

    assert [p.id for p in everything] == [v2.id, v1.id]
    assert [p.id for p in only_v1] == [v1.id]
    assert [p.id for p in window] == [v2.id]
    assert other_model == []


def test_diff_of_two_versions_ranks_the_changed_operator_first(db: Database) -> None:
    stored(db, "v1")
    stored(db, "v2")
    with db.sessions() as session:
        diff = pipeline.diff_model_versions(session, "fraud-scorer", "v1", "v2")
        missing = pipeline.diff_model_versions(session, "fraud-scorer", "v1", "v3")

    assert diff is not None
    assert missing is None
    assert diff.per_step  # 5 steps against 4
    assert diff.operators[0].name == "aten::addmm"
    assert diff.operators[0].status == "changed"
    assert diff.operators[0].delta_self_us > 0
    assert {"aten::layer_norm", "aten::native_layer_norm"} <= set(diff.new_operators)
    assert diff.vanished_operators == []


def test_deleting_a_trace_deletes_everything_it_owns(db: Database) -> None:
    profile = stored(db, "v1").profile
    with db.write_sessions.begin() as session:
        session.execute(delete(ProfilerTrace).where(ProfilerTrace.id == profile.id))

    assert not any(counts(db).values())
