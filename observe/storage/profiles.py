"""Profiler traces: the raw file as gzip chunks, the operator and step summaries, the timeline.

A trace's identity is the SHA-256 of its decompressed bytes (unique): the same file stored twice
is one row. Everything of a trace is written in the caller's transaction, so a trace is stored
whole or not at all; deleting the `profiler_traces` row deletes the rest (ON DELETE CASCADE).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import Select, insert, select
from sqlalchemy.orm import Session

from observe.db.models import (
    ProfileChunk,
    ProfileOperator,
    ProfilerTrace,
    ProfileStep,
    ProfileTimelineChunk,
)
from observe.schemas.profiles import (
    OperatorOut,
    OperatorSort,
    ProfileOut,
    StepOut,
    ThreadOut,
)

#: Rows per INSERT of operators and steps.
INSERT_BATCH = 1000


@dataclass(frozen=True)
class NewProfile:
    """A summarized trace ready to store. `summary` holds the counts, span, threads and
    metadata (`profile_out` reads them); `operators` and `steps` are rows of their tables
    without `profile_id`."""

    model: str
    model_version: str
    host: str
    captured_at: dt.datetime
    received_at: dt.datetime
    file_name: str | None
    sha256: str
    num_bytes: int
    num_events: int
    summary: dict[str, Any]
    operators: Sequence[dict[str, Any]]
    steps: Sequence[dict[str, Any]]


@dataclass(frozen=True)
class TimelineChunk:
    """Encoded timeline rows of one thread; `start_us`/`end_us` bound the events in it."""

    thread: int
    start_us: float
    end_us: float
    num_events: int
    data: bytes


def find_profile_id(session: Session, sha256: str) -> int | None:
    """The id of the trace with this SHA-256, if one is stored."""
    return session.scalar(select(ProfilerTrace.id).where(ProfilerTrace.sha256 == sha256))


def insert_profile(
    session: Session,
    profile: NewProfile,
    *,
    raw_chunks: Iterable[bytes],
    timeline_chunks: Iterable[TimelineChunk],
) -> int:
    """Store a trace with its raw chunks, operators, steps and timeline.

    Raises:
        sqlalchemy.exc.IntegrityError: a trace with the same SHA-256 is stored already.

    Returns:
        The new trace's id.
    """
    row = ProfilerTrace(
        model=profile.model,
        model_version=profile.model_version,
        host=profile.host,
        captured_at=profile.captured_at,
        received_at=profile.received_at,
        file_name=profile.file_name,
        sha256=profile.sha256,
        num_bytes=profile.num_bytes,
        num_events=profile.num_events,
        summary=profile.summary,
    )
    session.add(row)
    session.flush()
    for seq, data in enumerate(raw_chunks):
        session.execute(insert(ProfileChunk), [{"profile_id": row.id, "seq": seq, "data": data}])
    _insert_rows(session, ProfileOperator, row.id, profile.operators)
    _insert_rows(session, ProfileStep, row.id, profile.steps)
    for seq, chunk in enumerate(timeline_chunks):
        values = {"profile_id": row.id, "seq": seq, **chunk.__dict__}
        session.execute(insert(ProfileTimelineChunk), [values])
    return row.id


def _insert_rows(
    session: Session, table: type, profile_id: int, rows: Sequence[dict[str, Any]]
) -> None:
    for start in range(0, len(rows), INSERT_BATCH):
        batch = [{**item, "profile_id": profile_id} for item in rows[start : start + INSERT_BATCH]]
        session.execute(insert(table), batch)


def get_profile(session: Session, profile_id: int) -> ProfileOut | None:
    row = session.get(ProfilerTrace, profile_id)
    return None if row is None else profile_out(row)


def list_profiles(
    session: Session,
    *,
    model: str | None = None,
    model_version: str | None = None,
    host: str | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    limit: int = 100,
) -> list[ProfileOut]:
    """Traces captured in [start, end), newest capture first; every filter is optional."""
    query = _filtered(model=model, model_version=model_version, host=host)
    if start is not None:
        query = query.where(ProfilerTrace.captured_at >= start)
    if end is not None:
        query = query.where(ProfilerTrace.captured_at < end)
    query = query.order_by(ProfilerTrace.captured_at.desc(), ProfilerTrace.id.desc()).limit(limit)
    return [profile_out(row) for row in session.scalars(query)]


def find_latest_profile(
    session: Session,
    model: str,
    model_version: str,
    *,
    near: dt.datetime | None = None,
    host: str | None = None,
) -> ProfileOut | None:
    """The profile of a model version to look at: the latest one captured, or with `near`,
    the latest captured at or before `near` (else the first one after it).

    Args:
        near: a moment of interest, e.g. when a latency regression started.
        host: only traces from this host.
    """
    query = _filtered(model=model, model_version=model_version, host=host)
    newest_first = (ProfilerTrace.captured_at.desc(), ProfilerTrace.id.desc())
    if near is None:
        row = session.scalars(query.order_by(*newest_first).limit(1)).first()
        return None if row is None else profile_out(row)
    before = query.where(ProfilerTrace.captured_at <= near).order_by(*newest_first).limit(1)
    row = session.scalars(before).first()
    if row is None:
        after = query.where(ProfilerTrace.captured_at > near)
        after = after.order_by(ProfilerTrace.captured_at, ProfilerTrace.id).limit(1)
        row = session.scalars(after).first()
    return None if row is None else profile_out(row)


def _filtered(
    *, model: str | None, model_version: str | None, host: str | None
) -> Select[ProfilerTrace]:
    query = select(ProfilerTrace)
    if model is not None:
        query = query.where(ProfilerTrace.model == model)
    if model_version is not None:
        query = query.where(ProfilerTrace.model_version == model_version)
    if host is not None:
        query = query.where(ProfilerTrace.host == host)
    return query


def load_operators(
    session: Session,
    profile_id: int,
    *,
    categories: Sequence[str] | None = None,
    sort: OperatorSort = "self_us",
    limit: int | None = None,
) -> list[OperatorOut]:
    """Operators of a trace, largest `sort` first (`name`: alphabetical)."""
    column = getattr(ProfileOperator, sort)
    order = column.asc() if sort == "name" else column.desc()
    query = (
        select(ProfileOperator)
        .where(ProfileOperator.profile_id == profile_id)
        .order_by(order, ProfileOperator.op_index)
    )
    if categories:
        query = query.where(ProfileOperator.category.in_(list(categories)))
    if limit is not None:
        query = query.limit(limit)
    return [_operator_out(row) for row in session.scalars(query)]


def load_operator_frame(session: Session, profile_id: int) -> pd.DataFrame:
    """Operators of a trace as a frame: op_index, name, category, count, total_us, self_us."""
    columns = ("op_index", "name", "category", "count", "total_us", "self_us")
    query = select(*(getattr(ProfileOperator, c) for c in columns)).where(
        ProfileOperator.profile_id == profile_id
    )
    return pd.DataFrame(session.execute(query).all(), columns=list(columns))


def _operator_out(row: ProfileOperator) -> OperatorOut:
    return OperatorOut(
        name=row.name,
        category=row.category,
        count=row.count,
        total_us=row.total_us,
        self_us=row.self_us,
        mean_us=row.total_us / row.count if row.count else 0.0,
        input_shapes=row.input_shapes or [],
    )


def load_steps(session: Session, profile_id: int, *, origin_us: float = 0.0) -> list[StepOut]:
    """Steps of a trace in step order; `start_us` relative to `origin_us`."""
    query = (
        select(ProfileStep).where(ProfileStep.profile_id == profile_id).order_by(ProfileStep.step)
    )
    return [
        StepOut(
            step=row.step,
            start_us=row.start_us - origin_us,
            duration_us=row.duration_us,
            num_events=row.num_events,
            self_us_by_category=row.self_us_by_category,
        )
        for row in session.scalars(query)
    ]


def find_step(session: Session, profile_id: int, step: int) -> tuple[float, float] | None:
    """(start, end) in trace microseconds of one step: until the next step starts, or for the
    last step until its annotation ends (events are assigned to steps the same way)."""
    row = session.get(ProfileStep, (profile_id, step))
    if row is None:
        return None
    following = session.scalar(
        select(ProfileStep.start_us)
        .where(ProfileStep.profile_id == profile_id, ProfileStep.start_us > row.start_us)
        .order_by(ProfileStep.start_us)
        .limit(1)
    )
    return row.start_us, following if following is not None else row.start_us + row.duration_us


def iter_raw_chunks(session: Session, profile_id: int) -> Iterator[bytes]:
    """The trace's gzip members in order; concatenated they are the gzipped file."""
    query = (
        select(ProfileChunk.data)
        .where(ProfileChunk.profile_id == profile_id)
        .order_by(ProfileChunk.seq)
        .execution_options(yield_per=4)
    )
    yield from session.scalars(query)


def load_timeline_chunks(
    session: Session, profile_id: int, *, start_us: float, end_us: float
) -> list[TimelineChunk]:
    """Timeline chunks with an event overlapping [start_us, end_us) (trace microseconds)."""
    query = (
        select(ProfileTimelineChunk)
        .where(
            ProfileTimelineChunk.profile_id == profile_id,
            ProfileTimelineChunk.start_us < end_us,
            ProfileTimelineChunk.end_us > start_us,
        )
        .order_by(ProfileTimelineChunk.seq)
    )
    return [
        TimelineChunk(
            thread=row.thread,
            start_us=row.start_us,
            end_us=row.end_us,
            num_events=row.num_events,
            data=row.data,
        )
        for row in session.scalars(query)
    ]


def load_operator_names(session: Session, profile_id: int) -> dict[int, tuple[str, str]]:
    """op_index -> (name, category) of a trace."""
    query = select(ProfileOperator.op_index, ProfileOperator.name, ProfileOperator.category).where(
        ProfileOperator.profile_id == profile_id
    )
    return {index: (name, category) for index, name, category in session.execute(query)}


def profile_out(row: ProfilerTrace) -> ProfileOut:
    summary = row.summary or {}
    return ProfileOut(
        id=row.id,
        model=row.model,
        model_version=row.model_version,
        host=row.host,
        captured_at=row.captured_at,
        received_at=row.received_at,
        file_name=row.file_name,
        sha256=row.sha256,
        num_bytes=row.num_bytes,
        num_events=row.num_events,
        num_complete_events=int(summary.get("num_complete_events", 0)),
        num_operators=int(summary.get("num_operators", 0)),
        num_steps=int(summary.get("num_steps", 0)),
        duration_us=float(summary.get("duration_us", 0.0)),
        metadata=summary.get("metadata", {}),
    )


def load_threads(session: Session, profile_id: int) -> tuple[list[ThreadOut], float]:
    """The threads of a trace and its first event's start (trace microseconds)."""
    summary = session.scalar(select(ProfilerTrace.summary).where(ProfilerTrace.id == profile_id))
    summary = summary or {}
    threads = [ThreadOut(index=i, **thread) for i, thread in enumerate(summary.get("threads", []))]
    return threads, float(summary.get("start_us", 0.0))
