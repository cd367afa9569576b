"""Drift analyses: load frames or profiles through storage, run analyzers.drift, shape results.

A drift analysis compares a model's serving window with a baseline: a training reference data
set (by name, or the version's newest), or an earlier window (by default the window of the
same length just before). Windows up to `drift_raw_max_hours` long with at most
`drift_raw_max_rows` records are compared on raw records (exactly as Evidently would); longer
ones on the hourly feature profiles, merged, after folding the newest records into them. Both
sides always come from the same source: raw rows against the reference's stored rows, profiles
against the reference's profile.

Feature kinds: a reference's kinds come from its profile; serving data's from its values
(integers with at most 10 distinct values are categorical, as for integer columns), so raw and
profile analyses of the same records test the same way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session

from analyzers.drift import DriftResult, detect_drift, detect_drift_from_profiles, profile_kind
from analyzers.feature_profiles import FeatureProfile, ProfileMap, deserialize_profile_map
from observe.config import Settings
from observe.db.engine import Database
from observe.pipeline.profiling import refresh_profiles
from observe.schemas.findings import FindingIn
from observe.storage import feature_profiles as profile_store
from observe.storage import models as model_store
from observe.storage import references as reference_store
from observe.storage.references import ReferenceInfo

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
FINDING_BASELINE_DAYS = 7


class DriftInputError(ValueError):
    """The analysis cannot run as asked (no data, unknown reference ...); says why."""


@dataclass(frozen=True)
class DriftQuery:
    """What to compare. No reference and no baseline window: the version's newest reference
    if it has one, else the window of equal length before `start`."""

    model: str
    start: dt.datetime
    end: dt.datetime
    model_version: str | None = None
    baseline_start: dt.datetime | None = None
    baseline_end: dt.datetime | None = None
    reference: str | None = None
    tests: Mapping[str, str] = field(default_factory=dict)
    thresholds: Mapping[str, float] = field(default_factory=dict)
    drift_share: float | None = None


@dataclass(frozen=True)
class Baseline:
    kind: str  # "reference" or "window"
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    reference: ReferenceInfo | None = None

    def window(self) -> tuple[dt.datetime, dt.datetime]:
        """The baseline window (of a window baseline)."""
        if self.start is None or self.end is None:
            raise ValueError("a reference baseline has no window")
        return self.start, self.end

    def to_dict(self) -> dict[str, Any]:
        if self.reference is not None:
            ref = self.reference
            return {
                "kind": "reference",
                "reference": {
                    "id": ref.id,
                    "name": ref.name,
                    "model_version": ref.model_version,
                    "num_rows": ref.num_rows,
                },
            }
        return {"kind": "window", "start": self.start, "end": self.end}


@dataclass(frozen=True)
class DriftReport:
    model: str
    model_version: str | None
    start: dt.datetime
    end: dt.datetime
    baseline: Baseline
    num_rows_current: int
    num_rows_baseline: int
    result: DriftResult

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "model_version": self.model_version,
            "window": {"start": self.start, "end": self.end},
            "baseline": self.baseline.to_dict(),
            "num_rows_current": self.num_rows_current,
            "num_rows_baseline": self.num_rows_baseline,
            **self.result.to_dict(),
        }


@dataclass(frozen=True)
class Side:
    """One side of a comparison: raw rows or merged profiles."""

    frame: pd.DataFrame | None = None
    profiles: ProfileMap | None = None
    num_rows: int = 0


# --- the analysis -------------------------------------------------------------------------------


def analyze_drift(
    db: Database, query: DriftQuery, *, settings: Settings, now: dt.datetime
) -> DriftReport:
    """Run one drift analysis; DriftInputError when a side has no data."""
    if query.start >= query.end:
        raise DriftInputError("start must be before end")
    baseline = resolve_baseline(db, query)
    use_raw = _raw_fits(db, query.model, query.model_version, query.start, query.end, settings)
    if baseline.kind == "window" and use_raw:
        use_raw = _raw_fits(db, query.model, query.model_version, *baseline.window(), settings)
    if not use_raw:
        refresh_profiles(db.write_sessions, now=now, lag_seconds=settings.profiling_lag_seconds)
    current = load_side(db, query.model, query.model_version, query.start, query.end, raw=use_raw)
    reference = _baseline_side(db, query, baseline, raw=use_raw)
    if current.num_rows == 0:
        raise DriftInputError(f"no records of {query.model} in the window")
    if reference.num_rows == 0:
        raise DriftInputError("the baseline has no data")
    result = compare_sides(
        reference,
        current,
        tests=query.tests,
        thresholds=query.thresholds,
        drift_share=query.drift_share or settings.drift_share,
    )
    return DriftReport(
        query.model,
        query.model_version,
        query.start,
        query.end,
        baseline,
        current.num_rows,
        reference.num_rows,
        result,
    )


def resolve_baseline(db: Database, query: DriftQuery) -> Baseline:
    """The baseline a query asks for (see `DriftQuery`)."""
    if (query.baseline_start is None) != (query.baseline_end is None):
        raise DriftInputError("give both baseline_start and baseline_end, or neither")
    if query.baseline_start is not None and query.reference is not None:
        raise DriftInputError("compare with a reference or a baseline window, not both")
    if query.baseline_start is not None:
        if query.baseline_start >= query.baseline_end:  # type: ignore[operator]
            raise DriftInputError("baseline_start must be before baseline_end")
        return Baseline("window", query.baseline_start, query.baseline_end)
    with db.sessions() as session:
        found = reference_store.find_reference_dataset(
            session, model=query.model, model_version=query.model_version, name=query.reference
        )
    if found is not None:
        return Baseline("reference", reference=found)
    if query.reference is not None:
        raise DriftInputError(f"no reference data set named {query.reference!r} for {query.model}")
    length = query.end - query.start
    return Baseline("window", query.start - length, query.start)


def _raw_fits(
    db: Database,
    model: str,
    model_version: str | None,
    start: dt.datetime,
    end: dt.datetime,
    settings: Settings,
) -> bool:
    if (end - start).total_seconds() > settings.drift_raw_max_hours * 3600:
        return False
    with db.sessions() as session:
        count = profile_store.count_window_records(
            session, model=model, start=start, end=end, model_version=model_version
        )
    return count <= settings.drift_raw_max_rows


def load_side(
    db: Database,
    model: str,
    model_version: str | None,
    start: dt.datetime,
    end: dt.datetime,
    *,
    raw: bool,
) -> Side:
    """A serving window as raw features or as merged hourly profiles."""
    with db.sessions() as session:
        if raw:
            rows = profile_store.load_window_features(
                session, model=model, start=start, end=end, model_version=model_version
            )
            return Side(frame=features_frame(rows), num_rows=len(rows))
        stored = load_window_profiles(session, model, model_version, start, end)
    return _merge_stored(stored)


def load_window_profiles(
    session: Session,
    model: str,
    model_version: str | None,
    start: dt.datetime,
    end: dt.datetime,
) -> pd.DataFrame:
    """The stored profiles covering [start, end) widened to whole hours: daily rows for the
    whole UTC days inside it, hourly rows for the hours at its ends."""
    start, end = _floor_hour(start), _ceil_hour(end)
    first_day = _floor_hour(start).replace(hour=0)
    first_day = first_day if first_day == start else first_day + DAY
    last_day = end.replace(hour=0)
    if first_day >= last_day:
        return profile_store.load_feature_profiles(
            session, model=model, start=start, end=end, model_version=model_version
        )
    parts = [
        profile_store.load_feature_profiles(
            session,
            model=model,
            start=first_day,
            end=last_day,
            model_version=model_version,
            span="day",
        ),
        profile_store.load_feature_profiles(
            session, model=model, start=start, end=first_day, model_version=model_version
        ),
        profile_store.load_feature_profiles(
            session, model=model, start=last_day, end=end, model_version=model_version
        ),
    ]
    return pd.concat([p for p in parts if not p.empty] or parts[:1], ignore_index=True)


def _merge_stored(stored: pd.DataFrame) -> Side:
    profiles: ProfileMap = {}
    for name, group in stored.groupby("feature", sort=True):
        merged = FeatureProfile()
        for blob in group["profile"]:
            merged.merge_in(FeatureProfile.from_bytes(blob))
        profiles[str(name)] = merged
    rows = 0
    if not stored.empty:  # each hour's row count, once per version and hour
        per_hour = stored.groupby(["model_version", "start"])["num_rows"].max()
        rows = int(per_hour.sum())
    return Side(profiles=profiles, num_rows=rows)


def features_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """One column per feature from the `features` dicts of stored records."""
    return pd.DataFrame.from_records([f if isinstance(f, dict) else {} for f in rows["features"]])


def _baseline_side(db: Database, query: DriftQuery, baseline: Baseline, *, raw: bool) -> Side:
    if baseline.reference is None:
        return load_side(db, query.model, query.model_version, *baseline.window(), raw=raw)
    return load_reference_side(db, baseline.reference, raw=raw)


def load_reference_side(db: Database, reference: ReferenceInfo, *, raw: bool) -> Side:
    """A reference's stored rows, or its profile."""
    with db.sessions() as session:
        if raw:
            frame = reference_store.load_reference_rows(session, reference.id)
            return Side(frame=frame, num_rows=len(frame))
        blob = reference_store.load_reference_profile(session, reference.id)
    profiles = deserialize_profile_map(blob) if blob else {}
    return Side(profiles=profiles, num_rows=reference.num_rows)


def compare_sides(
    reference: Side,
    current: Side,
    *,
    tests: Mapping[str, str],
    thresholds: Mapping[str, float],
    drift_share: float,
) -> DriftResult:
    """Drift of `current` against `reference`, on rows or on profiles (both the same)."""
    try:
        if reference.frame is not None and current.frame is not None:
            return detect_drift(
                reference.frame,
                current.frame,
                kinds=feature_kinds(reference.frame, current.frame),
                tests=tests,
                thresholds=thresholds,
                drift_share=drift_share,
            )
        assert reference.profiles is not None
        assert current.profiles is not None
        kinds = {n: k for n, p in reference.profiles.items() if (k := profile_kind(p))}
        return detect_drift_from_profiles(
            reference.profiles,
            current.profiles,
            kinds=kinds,
            tests=tests,
            thresholds=thresholds,
            drift_share=drift_share,
        )
    except ValueError as error:  # an unknown test name, a test that does not apply
        raise DriftInputError(str(error)) from None


def feature_kinds(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, str]:
    """Kinds by the profile rule, from the reference where it has values, else from current."""
    kinds: dict[str, str] = {}
    for name in current.columns:
        source = (
            reference[name]
            if name in reference.columns and reference[name].notna().any()
            else current[name]
        )
        kind = profile_kind(FeatureProfile.from_values(source))
        if kind is not None:
            kinds[str(name)] = kind
    return kinds


def _floor_hour(value: dt.datetime) -> dt.datetime:
    return value.replace(minute=0, second=0, microsecond=0)


def _ceil_hour(value: dt.datetime) -> dt.datetime:
    floored = _floor_hour(value)
    return floored if floored == value else floored + HOUR


# --- drift over time ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineBucket:
    start: dt.datetime
    num_rows: int
    result: DriftResult | None

    def to_dict(self) -> dict[str, Any]:
        base: dict[str, Any] = {"start": self.start, "num_rows": self.num_rows}
        if self.result is None:
            return {**base, "dataset_drifted": None, "share_drifted": None, "features": {}}
        return {
            **base,
            "dataset_drifted": self.result.dataset_drifted,
            "share_drifted": self.result.share_drifted,
            "features": {
                f.feature: {"test": f.test, "score": f.score, "drifted": f.drifted}
                for f in self.result.features
            },
        }


def drift_timeline(
    db: Database,
    query: DriftQuery,
    *,
    bucket_seconds: int,
    settings: Settings,
    now: dt.datetime,
) -> tuple[Baseline, list[TimelineBucket]]:
    """Each bucket of the window (whole hours) against the baseline, from hourly profiles."""
    if bucket_seconds < 3600 or bucket_seconds % 3600:
        raise DriftInputError("bucket must be a positive multiple of 1h")
    start, end = _floor_hour(query.start), _ceil_hour(query.end)
    if (end - start).total_seconds() / bucket_seconds > 2000:
        raise DriftInputError("more than 2000 buckets: use a longer bucket")
    baseline = resolve_baseline(db, query)
    refresh_profiles(db.write_sessions, now=now, lag_seconds=settings.profiling_lag_seconds)
    reference = _baseline_side(db, query, baseline, raw=False)
    if reference.num_rows == 0:
        raise DriftInputError("the baseline has no data")
    with db.sessions() as session:
        stored = profile_store.load_feature_profiles(
            session, model=query.model, start=start, end=end, model_version=query.model_version
        )
    buckets = []
    step = dt.timedelta(seconds=bucket_seconds)
    starts = pd.to_datetime(stored["start"], utc=True)  # typed even when no profile is stored
    offset = (starts - pd.Timestamp(start)).dt.total_seconds() // bucket_seconds
    at = start
    index = 0
    while at < end:
        side = _merge_stored(stored[offset == index]) if not stored.empty else Side(profiles={})
        result = None
        if side.num_rows:
            result = compare_sides(
                reference,
                side,
                tests=query.tests,
                thresholds=query.thresholds,
                drift_share=query.drift_share or settings.drift_share,
            )
        buckets.append(TimelineBucket(at, side.num_rows, result))
        at, index = at + step, index + 1
    return baseline, buckets


# --- findings for the hourly analysis -----------------------------------------------------------


def findings_for_model(
    db: Database, model: str, *, now: dt.datetime, settings: Settings
) -> list[FindingIn]:
    """Drift findings of a model: one per version seen in the last day, for the current UTC
    day so far (the previous day during the first hour), against the version's newest
    reference, else against the `FINDING_BASELINE_DAYS` days before. Status "open" when the
    data set drifts, "ok" otherwise. Versions without data on both sides get no finding."""
    day_start = _floor_hour(now).replace(hour=0)
    end = _floor_hour(now)
    if end == day_start:
        day_start -= DAY
    with db.sessions() as session:
        info = model_store.get_model(session, model)
    if info is None:
        return []
    findings = []
    for version in info.versions:
        if version.last_seen_at < day_start:
            continue
        finding = _version_finding(db, model, version.model_version, day_start, end, settings, now)
        if finding is not None:
            findings.append(finding)
    return findings


def _version_finding(
    db: Database,
    model: str,
    version: str,
    start: dt.datetime,
    end: dt.datetime,
    settings: Settings,
    now: dt.datetime,
) -> FindingIn | None:
    with db.sessions() as session:
        has_reference = reference_store.find_reference_dataset(
            session, model=model, model_version=version
        )
    query = DriftQuery(
        model=model,
        start=start,
        end=end,
        model_version=version,
        baseline_start=None if has_reference else start - FINDING_BASELINE_DAYS * DAY,
        baseline_end=None if has_reference else start,
    )
    try:
        report = analyze_drift(db, query, settings=settings, now=now)
    except DriftInputError:
        return None
    return drift_finding(report)


def drift_finding(report: DriftReport) -> FindingIn:
    """The finding that records a drift report (one per model version and day)."""
    result = report.result
    drifted = [f.feature for f in result.features if f.drifted]
    version = report.model_version or "all"
    against = (
        f"reference {report.baseline.reference.name}"
        if report.baseline.reference is not None
        else "the previous window"
    )
    if result.dataset_drifted:
        summary = (
            f"{report.model} {version}: {len(drifted)} of {len(result.features)} features "
            f"drifted against {against} ({', '.join(drifted[:5])}"
            f"{', ...' if len(drifted) > 5 else ''})"
        )
    else:
        summary = (
            f"{report.model} {version}: no data set drift against {against} "
            f"({len(drifted)} of {len(result.features)} features drifted)"
        )
    details = report.to_dict()
    for feature in details["features"]:
        feature.pop("plot", None)
    return FindingIn(
        kind="drift",
        model=report.model,
        model_version=report.model_version,
        window_start=report.start,
        window_end=report.end,
        status="open" if result.dataset_drifted else "ok",
        severity=round(result.share_drifted, 6),
        summary=summary,
        details=_json_ready(details),
        dedupe_key=f"drift:{report.model}:{version}:{report.start:%Y-%m-%d}"[:128],
    )


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value
