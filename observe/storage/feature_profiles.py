"""Hourly and daily feature profiles, the profiling watermark, and raw feature reads for drift
and skew.

Profile rows are keyed by (model, model_version, start, feature); `span` selects the hourly
table (`feature_profiles`, start = hour_start) or the daily one (`feature_profile_days`, start =
day_start)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import pandas as pd
from sqlalchemy import Table, delete, func, select, update
from sqlalchemy.orm import Session

from observe.db.models import (
    FeatureProfileDayRollup,
    FeatureProfileRollup,
    InferenceRecord,
    ProfilingWatermark,
)
from observe.storage._sql import chunks, dialect_of, upsert

#: (model, model_version, hour_start or day_start, feature)
ProfileKey = tuple[str, str, dt.datetime, str]
Span = Literal["hour", "day"]

PROFILE_COLUMNS = ("model_version", "start", "feature", "num_rows", "profile")
_WATERMARKS: Table = ProfilingWatermark.__table__  # type: ignore[assignment]


def _model(span: Span) -> type[FeatureProfileRollup] | type[FeatureProfileDayRollup]:
    return FeatureProfileRollup if span == "hour" else FeatureProfileDayRollup


def _table(span: Span) -> tuple[Table, str]:
    table: Table = _model(span).__table__  # type: ignore[assignment]
    return table, "hour_start" if span == "hour" else "day_start"


@dataclass
class StoredProfile:
    """One hourly profile row; `id` is None for a row not stored yet."""

    id: int | None
    key: ProfileKey
    num_rows: int
    profile: bytes


def lock_watermark(session: Session, name: str) -> int:
    """The id up to which `name` has been processed, locked until the transaction ends (so
    concurrent profiling jobs take turns). 0 when never run."""
    query = select(ProfilingWatermark.last_id).where(ProfilingWatermark.name == name)
    if dialect_of(session) == "postgresql":
        statement = (
            upsert(session, _WATERMARKS)
            .values(name=name, last_id=0, updated_at=dt.datetime.now(dt.UTC))
            .on_conflict_do_nothing(index_elements=["name"])
        )
        session.execute(statement)
        query = query.with_for_update()
    found = session.scalar(query)
    return int(found or 0)


def save_watermark(session: Session, name: str, last_id: int, *, now: dt.datetime) -> None:
    statement = upsert(session, _WATERMARKS).values(name=name, last_id=last_id, updated_at=now)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["name"], set_={"last_id": last_id, "updated_at": now}
        )
    )


def load_new_feature_rows(
    session: Session, *, after_id: int, received_before: dt.datetime, limit: int
) -> pd.DataFrame:
    """Records stored after `after_id` and received before `received_before`, by id.

    Returns:
        DataFrame with columns id, model, model_version, timestamp, features (dict or None).
    """
    table = InferenceRecord.__table__  # Core columns: no ORM row processing on the hot path
    columns = ["id", "model", "model_version", "timestamp", "features"]
    query = (
        select(*(table.c[name] for name in columns))
        .where(table.c.id > after_id, table.c.received_at < received_before)
        .order_by(table.c.id)
        .limit(limit)
    )
    return pd.DataFrame(session.connection().execute(query).all(), columns=columns)


def lock_feature_profiles(
    session: Session, keys: Iterable[ProfileKey], *, span: Span = "hour"
) -> dict[ProfileKey, StoredProfile]:
    """Stored profiles for `keys` (missing keys are absent), locked on Postgres."""
    table, start_name = _table(span)
    start_column = table.c[start_name]
    found: dict[ProfileKey, StoredProfile] = {}
    by_model: dict[tuple[str, str], set[dt.datetime]] = {}
    wanted = set(keys)
    for model, version, start, _ in wanted:
        by_model.setdefault((model, version), set()).add(start)
    for (model, version), starts in sorted(by_model.items()):
        for chunk in chunks(sorted(starts), 500):
            query = (
                select(table.c.id, start_column, table.c.feature, table.c.num_rows, table.c.profile)
                .where(
                    table.c.model == model,
                    table.c.model_version == version,
                    start_column.in_(list(chunk)),
                )
                .order_by(start_column, table.c.feature)
            )
            if dialect_of(session) == "postgresql":
                query = query.with_for_update()
            for row_id, start, feature, num_rows, blob in session.execute(query):
                key = (model, version, _as_utc(start), feature)
                if key in wanted:
                    found[key] = StoredProfile(row_id, key, num_rows, blob)
    return found


def save_feature_profiles(
    session: Session, profiles: Sequence[StoredProfile], *, now: dt.datetime, span: Span = "hour"
) -> None:
    """Insert new rows (id None) and update stored ones."""
    table, start_name = _table(span)
    new = [
        {
            "model": p.key[0],
            "model_version": p.key[1],
            start_name: p.key[2],
            "feature": p.key[3],
            "num_rows": p.num_rows,
            "profile": p.profile,
            "updated_at": now,
        }
        for p in profiles
        if p.id is None
    ]
    if new:
        session.execute(table.insert(), new)
    changed = [
        {"id": p.id, "num_rows": p.num_rows, "profile": p.profile, "updated_at": now}
        for p in profiles
        if p.id is not None
    ]
    if changed:
        session.execute(update(_model(span)), changed)


def load_feature_profiles(
    session: Session,
    *,
    model: str,
    start: dt.datetime,
    end: dt.datetime,
    model_version: str | None = None,
    span: Span = "hour",
) -> pd.DataFrame:
    """Profiles of a model whose hour (or day) starts in [start, end).

    Returns:
        DataFrame with `PROFILE_COLUMNS` (`start` the hour or day, `profile` the serialised
        bytes).
    """
    table, start_name = _table(span)
    start_column = table.c[start_name]
    query = select(
        table.c.model_version, start_column, table.c.feature, table.c.num_rows, table.c.profile
    ).where(table.c.model == model, start_column >= start, start_column < end)
    if model_version is not None:
        query = query.where(table.c.model_version == model_version)
    frame = pd.DataFrame(session.execute(query).all(), columns=list(PROFILE_COLUMNS))
    if not frame.empty:
        frame["start"] = pd.to_datetime(frame["start"], utc=True)
    return frame


def delete_feature_profiles_before(session: Session, cutoff: dt.datetime) -> int:
    """Delete hourly profiles of hours, and daily ones of days, that start before `cutoff`;
    returns how many rows."""
    hours = session.execute(
        delete(FeatureProfileRollup).where(FeatureProfileRollup.hour_start < cutoff)
    )
    days = session.execute(
        delete(FeatureProfileDayRollup).where(FeatureProfileDayRollup.day_start < cutoff)
    )
    return int((hours.rowcount or 0) + (days.rowcount or 0))  # type: ignore[attr-defined]


def count_window_records(
    session: Session,
    *,
    model: str,
    start: dt.datetime,
    end: dt.datetime,
    model_version: str | None = None,
) -> int:
    """Records of a model (and version) with timestamps in [start, end)."""
    query = select(func.count()).where(
        InferenceRecord.model == model,
        InferenceRecord.timestamp >= start,
        InferenceRecord.timestamp < end,
    )
    if model_version is not None:
        query = query.where(InferenceRecord.model_version == model_version)
    return int(session.scalar(query) or 0)


def load_window_features(
    session: Session,
    *,
    model: str,
    start: dt.datetime,
    end: dt.datetime,
    model_version: str | None = None,
    limit: int | None = None,
    sample_every: int = 1,
) -> pd.DataFrame:
    """Features of the records of a model in [start, end), newest first up to `limit`;
    with `sample_every` k > 1, only records whose id is a multiple of k (a uniform sample of
    about 1/k of them, since ids follow arrival).

    Returns:
        DataFrame with columns request_id, model_version, timestamp, features (dict or None).
    """
    query = (
        select(
            InferenceRecord.request_id,
            InferenceRecord.model_version,
            InferenceRecord.timestamp,
            InferenceRecord.features,
        )
        .where(
            InferenceRecord.model == model,
            InferenceRecord.timestamp >= start,
            InferenceRecord.timestamp < end,
        )
        .order_by(InferenceRecord.timestamp.desc(), InferenceRecord.id.desc())
    )
    if model_version is not None:
        query = query.where(InferenceRecord.model_version == model_version)
    if sample_every > 1:
        query = query.where(InferenceRecord.id % sample_every == 0)
    if limit is not None:
        query = query.limit(limit)
    columns = ["request_id", "model_version", "timestamp", "features"]
    return pd.DataFrame(session.execute(query).all(), columns=columns)


def _as_utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
