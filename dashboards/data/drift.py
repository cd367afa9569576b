"""Drift and skew: observe's drift and skew analyses (`observe.pipeline.drift`, `.skew`) for
the pages, and the shapes their tables and heatmap need.

Short windows with few records are compared on raw records, longer ones on the hourly feature
profiles (the pipeline decides); the drift-over-time heatmap always reads the profiles.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from analyzers.drift import DriftResult, FeatureDrift
from dashboards.data import InputError, Window
from observe.api.errors import ApiError
from observe.api.params import parse_time
from observe.config import Settings
from observe.db.engine import Database
from observe.pipeline import drift as drift_pipeline
from observe.pipeline import skew as skew_pipeline
from observe.storage import models as model_store
from observe.storage import references as reference_store
from observe.storage.references import ReferenceInfo

#: Heatmap bucket lengths, shortest first: the shortest giving at most MAX_TIMELINE_BUCKETS.
TIMELINE_BUCKETS_SECONDS = (3600, 3 * 3600, 6 * 3600, 86_400, 7 * 86_400)
MAX_TIMELINE_BUCKETS = 60
FEATURE_COLUMNS = ("feature", "kind", "test", "statistic", "p_value", "threshold", "drifted")
#: The skew page reads at most this many (the newest) records of its window: decoding and
#: comparing 200,000 rows of features takes 3.5 s on a 2-core machine, 50,000 under 1 s, and
#: 50,000 rows decide every test as surely. The API reads up to OBSERVE_DRIFT_RAW_MAX_ROWS.
SKEW_MAX_ROWS = 50_000


@dataclass(frozen=True)
class Baseline:
    """What the window is compared with: a reference data set by name, a window, or neither
    (the version's newest reference, else the window just before)."""

    start: dt.datetime | None = None
    end: dt.datetime | None = None
    reference: str | None = None


def resolve_baseline(
    baseline_start: str | None, baseline_end: str | None, reference: str | None
) -> Baseline:
    try:
        start = parse_time(baseline_start or None, "baseline_start")
        end = parse_time(baseline_end or None, "baseline_end")
    except ApiError as error:
        raise InputError(error.detail) from None
    return Baseline(start, end, reference or None)


@dataclass(frozen=True)
class TimelineCell:
    feature: str
    start: dt.datetime
    test: str
    score: float | None
    drifted: bool


@dataclass(frozen=True)
class DriftView:
    """A drift report, the drift of each time bucket, and why the heatmap is missing if it
    is (`timeline_error`)."""

    report: drift_pipeline.DriftReport
    bucket_seconds: int
    timeline: list[drift_pipeline.TimelineBucket]
    timeline_error: str | None = None

    @property
    def result(self) -> DriftResult:
        return self.report.result


def list_versions(sessions: sessionmaker[Session], model: str) -> list[str]:
    """The model's versions, oldest first (InputError for an unknown model)."""
    with sessions() as session:
        info = model_store.get_model(session, model)
    if info is None:
        raise InputError(f"no model named {model!r}")
    return [version.model_version for version in info.versions]


def list_references(sessions: sessionmaker[Session], model: str) -> list[ReferenceInfo]:
    with sessions() as session:
        return reference_store.list_reference_datasets(session, model=model)


def timeline_bucket_seconds(window: Window) -> int:
    """Whole hours: the shortest of TIMELINE_BUCKETS_SECONDS that keeps the heatmap narrow."""
    for seconds in TIMELINE_BUCKETS_SECONDS:
        if window.seconds / seconds <= MAX_TIMELINE_BUCKETS:
            return seconds
    return TIMELINE_BUCKETS_SECONDS[-1]


def load_drift(
    db: Database,
    settings: Settings,
    *,
    model: str,
    window: Window,
    version: str | None = None,
    baseline: Baseline | None = None,
    now: dt.datetime,
) -> DriftView:
    """Per-feature drift of the window against the baseline, and per time bucket."""
    baseline = baseline or Baseline()
    query = drift_pipeline.DriftQuery(
        model=model,
        start=window.start,
        end=window.end,
        model_version=version,
        baseline_start=baseline.start,
        baseline_end=baseline.end,
        reference=baseline.reference,
    )
    try:
        report = drift_pipeline.analyze_drift(db, query, settings=settings, now=now)
    except drift_pipeline.DriftInputError as error:
        raise InputError(str(error)) from None
    bucket = timeline_bucket_seconds(window)
    try:
        _, buckets = drift_pipeline.drift_timeline(
            db, query, bucket_seconds=bucket, settings=settings, now=now
        )
    except drift_pipeline.DriftInputError as error:
        return DriftView(report, bucket, [], f"No drift over time: {error}")
    return DriftView(report, bucket, buckets)


def feature_table(result: DriftResult) -> pd.DataFrame:
    """One row per feature: FEATURE_COLUMNS, drifted features first, then by name."""
    frame = result.to_frame()
    return frame.sort_values(["drifted", "feature"], ascending=[False, True], ignore_index=True)


def pick_feature(result: DriftResult, wanted: str | None) -> FeatureDrift | None:
    """The feature to plot: the one asked for, else the first drifted (by name), else the
    first. None without features; InputError for a feature the result does not have."""
    if not result.features:
        return None
    if wanted:
        try:
            return result.feature(wanted)
        except KeyError:
            raise InputError(f"feature: {wanted!r} is not a feature of this model") from None
    drifted = sorted((f for f in result.features if f.drifted), key=lambda f: f.feature)
    return drifted[0] if drifted else sorted(result.features, key=lambda f: f.feature)[0]


def timeline_cells(buckets: list[drift_pipeline.TimelineBucket]) -> list[TimelineCell]:
    """One cell per (feature, bucket with records): the heatmap's data."""
    return [
        TimelineCell(feature.feature, bucket.start, feature.test, feature.score, feature.drifted)
        for bucket in buckets
        if bucket.result is not None
        for feature in bucket.result.features
    ]


# --- skew --------------------------------------------------------------------------------------


def load_skew(
    db: Database,
    settings: Settings,
    *,
    model: str,
    window: Window,
    version: str | None = None,
    reference: str | None = None,
    join_key: str | None = None,
) -> skew_pipeline.SkewReport:
    """Schema, distribution and (with `join_key`) feature-value skew of the window's newest
    SKEW_MAX_ROWS records against a training reference."""
    query = skew_pipeline.SkewQuery(
        model=model,
        start=window.start,
        end=window.end,
        model_version=version,
        reference=reference,
        join_key=join_key,
        max_rows=min(SKEW_MAX_ROWS, settings.drift_raw_max_rows),
    )
    try:
        return skew_pipeline.analyze_skew(db, query, settings=settings)
    except drift_pipeline.DriftInputError as error:
        raise InputError(str(error)) from None
