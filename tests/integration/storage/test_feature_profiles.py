"""observe.storage.feature_profiles: hourly and daily rows, locking reads, retention."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from analyzers.feature_profiles import FeatureProfile
from observe.db.engine import Database
from observe.pipeline import retention as retention_job
from observe.storage import feature_profiles as profile_store
from observe.storage.feature_profiles import StoredProfile
from tests.factories import T0

DAY = dt.timedelta(days=1)


def blob(*values: float) -> bytes:
    return FeatureProfile.from_values(pd.Series(values)).to_bytes()


def test_rows_are_inserted_then_updated_per_span(db: Database) -> None:
    hour_key = ("m", "v1", T0, "x")
    day_key = ("m", "v1", T0.replace(hour=0), "x")
    with db.write_sessions.begin() as session:
        profile_store.save_feature_profiles(
            session, [StoredProfile(None, hour_key, 2, blob(1.0, 2.0))], now=T0
        )
        profile_store.save_feature_profiles(
            session, [StoredProfile(None, day_key, 2, blob(1.0, 2.0))], now=T0, span="day"
        )
    with db.write_sessions.begin() as session:
        stored = profile_store.lock_feature_profiles(session, [hour_key, ("m", "v1", T0, "y")])
        assert set(stored) == {hour_key}
        row = stored[hour_key]
        profile_store.save_feature_profiles(
            session, [StoredProfile(row.id, hour_key, 3, blob(1.0, 2.0, 3.0))], now=T0
        )
    with db.sessions() as session:
        hours = profile_store.load_feature_profiles(session, model="m", start=T0, end=T0 + DAY)
        days = profile_store.load_feature_profiles(
            session, model="m", start=T0 - DAY, end=T0 + DAY, span="day"
        )
    assert hours["num_rows"].tolist() == [3]
    assert FeatureProfile.from_bytes(hours["profile"][0]).num_numbers == 3
    assert days["start"].tolist() == [pd.Timestamp(T0.replace(hour=0))]


def test_retention_deletes_old_hours_and_days(db: Database) -> None:
    rows = [
        StoredProfile(None, ("m", "v1", T0 - 20 * DAY, "x"), 1, blob(1.0)),
        StoredProfile(None, ("m", "v1", T0, "x"), 1, blob(1.0)),
    ]
    with db.write_sessions.begin() as session:
        profile_store.save_feature_profiles(session, rows, now=T0)
        profile_store.save_feature_profiles(
            session, [StoredProfile(None, r.key, 1, r.profile) for r in rows], now=T0, span="day"
        )
    deleted = retention_job.apply_retention(
        db.write_sessions, now=T0 + DAY, retention_days=30, rollup_retention_days=10
    )
    assert deleted["feature_profiles"] == 2
    with db.sessions() as session:
        left = profile_store.load_feature_profiles(
            session, model="m", start=T0 - 30 * DAY, end=T0 + DAY
        )
    assert left["start"].tolist() == [pd.Timestamp(T0)]


def test_deleting_a_model_deletes_its_profiles(db: Database) -> None:
    from observe.storage import models as model_store

    for model in ("m", "other"):
        with db.write_sessions.begin() as session:
            for span in ("hour", "day"):
                profile_store.save_feature_profiles(
                    session,
                    [StoredProfile(None, (model, "v1", T0, "x"), 1, blob(1.0))],
                    now=T0,
                    span=span,  # type: ignore[arg-type]
                )
    with db.write_sessions.begin() as session:
        model_store.delete_models(session, ["m"])
    with db.sessions() as session:
        for span in ("hour", "day"):
            for model, expected in (("m", 0), ("other", 1)):
                rows = profile_store.load_feature_profiles(
                    session,
                    model=model,
                    start=T0 - DAY,
                    end=T0 + DAY,
                    span=span,  # type: ignore[arg-type]
                )
                assert len(rows) == expected
