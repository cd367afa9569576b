"""The profiling job: fold newly stored records into hourly and daily per-feature profiles.

Ingest does no profiling on the request path. Inside `observe serve` this job runs on an
interval (and before an analysis reads profiles): it reads records stored after a watermark (the
last record id it folded), groups them by model, version, hour and feature, merges each group's
profile into the stored hour's and day's, and moves the watermark, all in one transaction; the
watermark row is locked, so server workers take turns. Records that arrive late for an old hour
simply merge into that hour's (and day's) profile. Long windows read whole days from the daily
rows and only their ragged ends from the hourly ones.

Only records received more than `lag_seconds` ago are folded: a batch is committed within the
write timeout of its arrival, so a record id below the watermark cannot still be uncommitted.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from analyzers.feature_profiles import FeatureProfile, profile_frame
from observe.storage import feature_profiles as profile_store
from observe.storage.feature_profiles import ProfileKey, StoredProfile

log = logging.getLogger(__name__)

WATERMARK = "inference_records"
BATCH_RECORDS = 50_000


@dataclass
class ProfilingRun:
    num_records: int = 0
    num_profiles: int = 0


def refresh_profiles(
    write_sessions: sessionmaker[Session],
    *,
    now: dt.datetime,
    lag_seconds: float = 60.0,
    batch_records: int = BATCH_RECORDS,
    max_batches: int | None = None,
) -> ProfilingRun:
    """Fold every record received before ``now - lag_seconds`` and not folded yet.

    Returns:
        How many records were folded and profile rows written.
    """
    run = ProfilingRun()
    received_before = now - dt.timedelta(seconds=lag_seconds)
    batches = 0
    while max_batches is None or batches < max_batches:
        with write_sessions.begin() as session:
            num_records, num_profiles = _fold_batch(session, received_before, batch_records, now)
        run.num_records += num_records
        run.num_profiles += num_profiles
        batches += 1
        if num_records < batch_records:
            break
    if run.num_records:
        log.info("profiled %d records into %d profiles", run.num_records, run.num_profiles)
    return run


def _fold_batch(
    session: Session, received_before: dt.datetime, limit: int, now: dt.datetime
) -> tuple[int, int]:
    after_id = profile_store.lock_watermark(session, WATERMARK)
    rows = profile_store.load_new_feature_rows(
        session, after_id=after_id, received_before=received_before, limit=limit
    )
    if rows.empty:
        return 0, 0
    written = store_profiles(session, profile_batch(rows), now=now)
    profile_store.save_watermark(session, WATERMARK, int(rows["id"].max()), now=now)
    return len(rows), written


def store_profiles(
    session: Session, hourly: dict[ProfileKey, tuple[FeatureProfile, int]], *, now: dt.datetime
) -> int:
    """Merge hourly profiles (with their row counts) into the stored hours and days.

    Returns:
        The number of profile rows written.
    """
    written = 0
    for span, profiles in (("hour", hourly), ("day", by_day(hourly))):
        stored = profile_store.lock_feature_profiles(session, profiles, span=span)  # type: ignore[arg-type]
        merged = [
            merge_into_stored(key, profile, count, stored.get(key))
            for key, (profile, count) in profiles.items()
        ]
        profile_store.save_feature_profiles(session, merged, now=now, span=span)  # type: ignore[arg-type]
        written += len(merged)
    return written


def profile_batch(rows: pd.DataFrame) -> dict[ProfileKey, tuple[FeatureProfile, int]]:
    """Profiles of a batch of records per (model, version, hour, feature), with row counts.

    A record without a feature counts as a null of that feature only within hours where some
    record of the version has it.
    """
    hours = pd.to_datetime(rows["timestamp"], utc=True).dt.floor("h")
    out: dict[ProfileKey, tuple[FeatureProfile, int]] = {}
    for (model, version, hour), group in rows.groupby(
        [rows["model"], rows["model_version"], hours]
    ):
        features = pd.DataFrame.from_records(
            [f if isinstance(f, dict) else {} for f in group["features"]], index=group.index
        )
        hour_start = hour.to_pydatetime()
        for name, profile in profile_frame(features).items():
            out[(str(model), str(version), hour_start, name)] = (profile, len(group))
    return out


def by_day(
    hourly: dict[ProfileKey, tuple[FeatureProfile, int]],
) -> dict[ProfileKey, tuple[FeatureProfile, int]]:
    """Hourly profiles merged per (model, version, day, feature)."""
    days: dict[ProfileKey, tuple[FeatureProfile, int]] = {}
    for (model, version, hour, feature), (profile, count) in hourly.items():
        key = (model, version, hour.replace(hour=0), feature)
        if key in days:
            days[key][0].merge_in(profile)
            days[key] = (days[key][0], days[key][1] + count)
        else:
            days[key] = (FeatureProfile.from_bytes(profile.to_bytes()), count)
    return days


def merge_into_stored(
    key: ProfileKey, profile: FeatureProfile, num_rows: int, stored: StoredProfile | None
) -> StoredProfile:
    if stored is None:
        return StoredProfile(None, key, num_rows, profile.to_bytes())
    combined = FeatureProfile.from_bytes(stored.profile)
    combined.merge_in(profile)
    return StoredProfile(stored.id, key, stored.num_rows + num_rows, combined.to_bytes())


def merge_stored(blobs: Iterable[bytes]) -> FeatureProfile:
    """One profile from many serialised ones."""
    merged = FeatureProfile()
    for blob in blobs:
        merged.merge_in(FeatureProfile.from_bytes(blob))
    return merged
