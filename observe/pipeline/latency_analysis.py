"""Latency regressions and SLO breaches of a model, from its rollups, events and records.

For every series (the whole model, and each version) and percentile, the per-bucket
percentile series is segmented with `analyzers.latency.detect_change_points`. A change point
is a regression when the new level is at least `MIN_RATIO` times the old one, the change is
`MIN_RATIO` times larger than the change at the same time a day earlier (else it is the daily
traffic pattern), and the requests
after it are slower than those before (the share above the old percentile grew, one-sided
p < `ALPHA`). Each regression carries the before/after comparison of the requests (raw
latencies while the records are kept, else the rollup histograms), the nearest deploy or other
change event before it, and the slices (version, host, tag value) that explain it.

A version that first served in the window alongside older ones (a canary) has no "before" of
its own, and at a small share of the traffic it hardly moves the model's percentiles. So it is
also compared with the versions serving at the same time, the comparison canary analysis
makes: over its first `MAX_TEST_WINDOW`, its percentile at least `MIN_RATIO` times theirs and
more of its requests above their percentile (one-sided p < `ALPHA`) is a regression of that
version, open while it serves next to them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sqlalchemy.orm import Session

from analyzers import latency as detector
from analyzers.histograms import Histogram
from observe.config import Settings
from observe.db.engine import Database
from observe.pipeline import latency
from observe.schemas.findings import FindingIn
from observe.storage import findings as finding_store
from observe.storage import models as model_store
from observe.storage import rollups as rollup_store
from observe.storage import signals as signal_store

REGRESSION_KIND = "latency_regression"
SLO_KIND = "slo_breach"
#: The hourly run looks this far back, in buckets of this length (2016 points per series).
LOOKBACK = dt.timedelta(days=7)
ANALYSIS_BUCKET_SECONDS = 300
#: A new level at least this many times the old one is a regression.
MIN_RATIO = 1.1
#: Significance level of the before/after test.
ALPHA = 0.01
#: Buckets with fewer requests are treated as missing: their percentiles are mostly noise.
MIN_REQUESTS_PER_BUCKET = 3
#: Change points of different series or percentiles this many buckets apart are one incident.
ONSET_TOLERANCE_BUCKETS = 3
#: The before/after test compares at most this long on each side of the onset.
MAX_TEST_WINDOW = dt.timedelta(hours=6)
#: Above this many requests in the test windows, the test reads rollups instead of records.
MAX_RAW_REQUESTS = 200_000
#: An event counts for a regression when it is at most this long before the onset.
MIN_EVENT_HORIZON = dt.timedelta(hours=1)
EVENT_HORIZON_BUCKETS = 12
#: Read before the window, so that every onset has the same hours a day earlier to compare.
DAILY_CONTEXT = dt.timedelta(days=1)
#: Slices reported per regression.
NUM_CARRIERS = 5


@dataclass(frozen=True)
class Regression:
    """A latency regression of one series at one percentile."""

    model: str
    series: str
    percentile: float
    onset_at: dt.datetime
    before_start: dt.datetime
    cleared_at: dt.datetime | None
    before_ms: float
    after_ms: float
    ratio: float
    is_open: bool
    significance: dict[str, Any]
    event: dict[str, Any] | None
    carriers: list[dict[str, Any]] = field(default_factory=list)

    @property
    def model_version(self) -> str | None:
        """The version that carries it: its own series' version, or the version slice that
        explains most of a model-wide change."""
        if self.series != latency.ALL:
            return self.series
        for carrier in self.carriers:
            if carrier["dimension"] == latency.VERSION and carrier["explained"] >= 0.5:
                return str(carrier["value"])
        return None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "model_version": self.model_version}


def detect_regressions(
    session: Session,
    *,
    model: str,
    start: dt.datetime,
    end: dt.datetime,
    bucket_seconds: int = ANALYSIS_BUCKET_SECONDS,
    percentiles: Sequence[float] = latency.DEFAULT_PERCENTILES,
    model_versions: Sequence[str] | None = None,
    rollup_tags: Sequence[str] = (),
) -> list[Regression]:
    """Regressions of a model in [start, end), oldest first.

    The day before `start` is read too, as the reference that tells the daily traffic pattern
    from a regression.

    Args:
        bucket_seconds: length of the buckets of the percentile series.
        percentiles: which percentile series to segment (0-100).
        model_versions: only these versions' series (and their merged series); None: the whole
            model and every version.
        rollup_tags: tag keys with rollups, the slices a regression is attributed to.
    """
    found = []
    for by in (latency.ALL, latency.VERSION):
        result = latency.latency_series(
            session,
            model=model,
            start=start - DAILY_CONTEXT,
            end=end,
            bucket_seconds=bucket_seconds,
            by=by,
            model_versions=model_versions,
            percentiles=percentiles,
        )
        context = _Context(session, model, result, tuple(rollup_tags))
        for name, frame in result.frame.groupby("series", sort=True):
            for percentile in percentiles:
                found += context.regressions_of(str(name), frame, percentile)
        if by == latency.VERSION:
            found += context.new_version_regressions(start, end, percentiles, model_versions)
    first = latency.align_window(start, end, bucket_seconds)[0]
    return sorted(
        (r for r in found if r.onset_at >= first),
        key=lambda r: (r.onset_at, r.series, r.percentile),
    )


@dataclass
class _Context:
    session: Session
    model: str
    result: latency.LatencySeries
    rollup_tags: tuple[str, ...]

    @property
    def bucket(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.result.bucket_seconds)

    def regressions_of(
        self, series: str, frame: pd.DataFrame, percentile: float
    ) -> list[Regression]:
        values = self._dense(frame, latency.percentile_column(percentile))
        change_points = detector.detect_change_points(values)
        levels = [
            _median_observed(values[a:b])
            for a, b in detector.segment_bounds(values.size, change_points)
        ]
        bounds = [0, *change_points, values.size]
        found = []
        for position in range(len(change_points)):
            before, after = levels[position], levels[position + 1]
            if before <= 0 or after < MIN_RATIO * before:
                continue
            if self._is_daily_pattern(values, bounds, position):
                continue
            regression = self._regression(
                series, percentile, change_points, levels, position, values.size
            )
            if regression is not None:
                found.append(regression)
        return found

    def new_version_regressions(
        self,
        start: dt.datetime,
        end: dt.datetime,
        percentiles: Sequence[float],
        model_versions: Sequence[str] | None,
    ) -> list[Regression]:
        """Versions first seen in [start, end) that are slower than the versions serving
        beside them over their first hours (see the module docstring)."""
        frame = self.result.frame
        if frame.empty:
            return []
        info = model_store.get_model(self.session, self.model)
        first_seen = {v.model_version: v.first_seen_at for v in info.versions} if info else {}
        serving = frame[frame["num_requests"] > 0]
        buckets = pd.to_datetime(serving["bucket_start"], utc=True)
        found = []
        for version, seen_at in first_seen.items():
            if not start <= seen_at < end or (model_versions and version not in model_versions):
                continue
            onset = latency.align_window(seen_at, seen_at, self.result.bucket_seconds)[0]
            older = [v for v, t in first_seen.items() if t < seen_at]
            mine = buckets[(serving["series"] == version).to_numpy()]
            theirs = buckets[serving["series"].isin(older).to_numpy()]
            overlap = sorted(set(mine) & set(theirs))
            if not overlap:
                continue  # replaced the others at once: the model's own series show that
            window_end = min(onset + MAX_TEST_WINDOW, end)
            # Over when one side served on without the other (a rollback or a full rollout);
            # a model that has had no traffic since has ended nothing.
            cleared_at = (
                None if overlap[-1] >= buckets.max() else overlap[-1].to_pydatetime() + self.bucket
            )
            found += self._against_older(version, older, percentiles, onset, window_end, cleared_at)
        return found

    def _against_older(
        self,
        version: str,
        older: list[str],
        percentiles: Sequence[float],
        onset: dt.datetime,
        window_end: dt.datetime,
        cleared_at: dt.datetime | None,
    ) -> list[Regression]:
        """`version` against the `older` versions serving beside it in [onset, window_end):
        a regression per percentile at which it is slower."""
        theirs = _merged(self._rollups("", older, onset, window_end))
        mine = _merged(self._rollups("", [version], onset, window_end))
        if theirs.total == 0 or mine.total == 0:
            return []
        counts = detector.histogram_counts(theirs, mine)
        their_counts, my_counts = detector.dense_counts(theirs), detector.dense_counts(mine)
        shift: dict[str, Any] | None = None
        event: dict[str, Any] | None = None
        found = []
        for percentile in percentiles:
            quantile = detector.compare_quantile(*counts, quantile=percentile / 100)
            before = detector.dense_quantile(their_counts, percentile / 100)
            after = detector.dense_quantile(my_counts, percentile / 100)
            if not before or after is None or after < MIN_RATIO * before:
                continue
            if quantile.p_value >= ALPHA:
                continue
            if shift is None:
                shift, event = asdict(detector.compare_counts(*counts)), self._event(onset)
            found.append(
                Regression(
                    model=self.model,
                    series=version,
                    percentile=percentile,
                    onset_at=onset,
                    before_start=onset,
                    cleared_at=cleared_at,
                    before_ms=before,
                    after_ms=after,
                    ratio=after / before,
                    is_open=cleared_at is None,
                    significance={
                        "source": "rollups",
                        "comparison": "concurrent versions",
                        "baseline_versions": older,
                        "before_window": [onset, window_end],
                        "after_window": [onset, window_end],
                        "mann_whitney": shift,
                        "quantile_test": asdict(quantile),
                    },
                    event=event,
                    carriers=self._carriers(
                        None, onset - (window_end - onset), onset, window_end, percentile
                    ),
                )
            )
        return found

    def _is_daily_pattern(self, values: np.ndarray, bounds: list[int], position: int) -> bool:
        """Did the level change as much at the same time a day earlier? Then the change is the
        daily traffic pattern, not a regression."""
        day = dt.timedelta(days=1) // self.bucket
        width = max(day // 4, detector.MIN_SIZE)
        onset = bounds[position + 1]
        first, last = max(bounds[position], onset - width), min(bounds[position + 2], onset + width)
        if day < 2 or onset < day:
            return False
        today = _level_ratio(values, first, onset, last)
        yesterday = _level_ratio(values, max(first - day, 0), onset - day, last - day)
        if today is not None and yesterday is not None:
            return today < MIN_RATIO * yesterday
        # No level to compare with before yesterday's onset: compare the new levels themselves.
        earlier = values[onset - day : last - day]
        if np.count_nonzero(~np.isnan(earlier)) < detector.MIN_SIZE:
            return False
        return bool(np.nanmedian(values[onset:last]) < MIN_RATIO * np.nanmedian(earlier))

    def _dense(self, frame: pd.DataFrame, column: str) -> np.ndarray:
        num_buckets = int((self.result.end - self.result.start) / self.bucket)
        values = np.full(num_buckets, np.nan)
        position = (
            (pd.to_datetime(frame["bucket_start"], utc=True) - pd.Timestamp(self.result.start))
            / self.bucket
        ).to_numpy(dtype=np.int64)
        usable = frame["num_requests"].to_numpy() >= MIN_REQUESTS_PER_BUCKET
        values[position[usable]] = frame[column].to_numpy(dtype=np.float64)[usable]
        return values

    def _time(self, index: int) -> dt.datetime:
        return self.result.start + index * self.bucket

    def _regression(
        self,
        series: str,
        percentile: float,
        change_points: list[int],
        levels: list[float],
        position: int,
        num_buckets: int,
    ) -> Regression | None:
        bounds = [0, *change_points, num_buckets]
        onset = self._time(bounds[position + 1])
        before_start = max(self._time(bounds[position]), onset - MAX_TEST_WINDOW)
        after_end = min(self._time(bounds[position + 2]), onset + MAX_TEST_WINDOW)
        versions = None if series == latency.ALL else [series]
        significance = self._significance(versions, before_start, onset, after_end, percentile)
        if significance is None or significance["quantile_test"]["p_value"] >= ALPHA:
            return None
        before, after = levels[position], levels[position + 1]
        cleared = next(
            (
                bounds[later + 1]
                for later in range(position + 1, len(change_points))
                if levels[later + 1] < MIN_RATIO * before
            ),
            None,
        )
        return Regression(
            model=self.model,
            series=series,
            percentile=percentile,
            onset_at=onset,
            before_start=self._time(bounds[position]),
            cleared_at=None if cleared is None else self._time(cleared),
            before_ms=before,
            after_ms=after,
            ratio=after / before,
            is_open=cleared is None,
            significance=significance,
            event=self._event(onset),
            carriers=self._carriers(versions, before_start, onset, after_end, percentile),
        )

    def _significance(
        self,
        versions: list[str] | None,
        before_start: dt.datetime,
        onset: dt.datetime,
        after_end: dt.datetime,
        percentile: float,
    ) -> dict[str, Any] | None:
        counts, source = self._raw_counts(versions, before_start, onset, after_end)
        if counts is None:
            before, after = (
                _merged(self._rollups("", versions, a, b))
                for a, b in ((before_start, onset), (onset, after_end))
            )
            if before.total == 0 or after.total == 0:
                return None
            counts, source = detector.histogram_counts(before, after), "rollups"
        shift = detector.compare_counts(*counts)
        quantile = detector.compare_quantile(*counts, quantile=percentile / 100)
        return {
            "source": source,
            "before_window": [before_start, onset],
            "after_window": [onset, after_end],
            "mann_whitney": asdict(shift),
            "quantile_test": asdict(quantile),
        }

    def _raw_counts(
        self,
        versions: list[str] | None,
        before_start: dt.datetime,
        onset: dt.datetime,
        after_end: dt.datetime,
    ) -> tuple[Any, str]:
        rollups = self._rollups("", versions, before_start, after_end)
        expected = int(rollups["num_requests"].sum()) if not rollups.empty else 0
        if expected == 0 or expected > MAX_RAW_REQUESTS:
            return None, ""
        raw = rollup_store.load_raw_latencies(
            self.session,
            model=self.model,
            start=before_start,
            end=after_end,
            model_versions=versions,
        )
        if len(raw) != expected:  # past the retention period, or partly so
            return None, ""
        times = pd.to_datetime(raw["timestamp"], utc=True)
        is_after = (times >= pd.Timestamp(onset)).to_numpy()
        latency_ms = raw["latency_ms"].to_numpy(dtype=np.float64)
        if is_after.all() or not is_after.any():
            return None, ""
        return detector.sample_counts(latency_ms[~is_after], latency_ms[is_after]), "records"

    def _rollups(
        self, dim_key: str, versions: list[str] | None, start: dt.datetime, end: dt.datetime
    ) -> pd.DataFrame:
        return rollup_store.load_latency_rollups(
            self.session,
            model=self.model,
            start=start,
            end=end,
            dim_key=dim_key,
            model_versions=versions,
        )

    def _event(self, onset: dt.datetime) -> dict[str, Any] | None:
        horizon = max(MIN_EVENT_HORIZON, EVENT_HORIZON_BUCKETS * self.bucket)
        rows = signal_store.load_events(
            self.session, model=self.model, start=onset - horizon, end=onset + self.bucket
        )
        frame = pd.DataFrame(
            [
                {
                    "id": e.id,
                    "timestamp": e.timestamp,
                    "kind": e.kind,
                    "model_version": e.model_version,
                    "traffic_pct": e.traffic_pct,
                    "description": e.description,
                }
                for e in rows
            ]
        )
        chosen = detector.nearest_event(
            frame, onset, horizon=horizon, tolerance=self.bucket - dt.timedelta(microseconds=1)
        )
        if chosen is None:
            return None
        event = frame.loc[chosen].to_dict()
        event["id"] = int(event["id"])
        event["seconds_before_onset"] = (onset - event["timestamp"]).total_seconds()
        return {key: (None if _is_nan(value) else value) for key, value in event.items()}

    def _carriers(
        self,
        versions: list[str] | None,
        before_start: dt.datetime,
        onset: dt.datetime,
        after_end: dt.datetime,
        percentile: float,
    ) -> list[dict[str, Any]]:
        windows = ((before_start, onset), (onset, after_end))
        by_version = [self._rollups("", versions, a, b) for a, b in windows]
        slices: dict[tuple[str, str], tuple[Histogram, Histogram]] = {}
        if versions is None:
            slices |= _slices(latency.VERSION, "model_version", by_version)
        for tag in self.rollup_tags:
            frames = [self._rollups(tag, versions, a, b) for a, b in windows]
            slices |= _slices(tag, "dim_value", frames)
        shifts = detector.attribute_shift(
            _merged(by_version[0]),
            _merged(by_version[1]),
            slices,
            quantile=percentile / 100,
            preferred_dimensions=(latency.VERSION,),
        )
        return [asdict(s) for s in shifts[:NUM_CARRIERS]]


def _level_ratio(values: np.ndarray, first: int, onset: int, last: int) -> float | None:
    """Median level of [onset, last) over that of [first, onset), if both have data."""
    before, after = values[first:onset], values[onset:last]
    if min(np.count_nonzero(~np.isnan(before)), np.count_nonzero(~np.isnan(after))) < 2:
        return None
    level = float(np.nanmedian(before))
    return float(np.nanmedian(after)) / level if level > 0 else None


def _merged(frame: pd.DataFrame) -> Histogram:
    merged = Histogram.empty()
    for blob in frame["histogram"]:
        merged = merged.merge(Histogram.from_bytes(blob))
    return merged


def _slices(
    dimension: str, column: str, frames: list[pd.DataFrame]
) -> dict[tuple[str, str], tuple[Histogram, Histogram]]:
    """Before and after histograms of each value of `column` in the two windows' rollups."""
    names = sorted(set(frames[0][column].astype(str)) | set(frames[1][column].astype(str)))
    per_window = []
    for frame in frames:
        groups = {name: Histogram.empty() for name in names}
        for label, blob in zip(frame[column].astype(str), frame["histogram"], strict=True):
            groups[label] = groups[label].merge(Histogram.from_bytes(blob))
        per_window.append(groups)
    return {(dimension, name): (per_window[0][name], per_window[1][name]) for name in names}


def _is_nan(value: object) -> bool:
    return isinstance(value, float) and value != value


# --- findings --------------------------------------------------------------------------------


def findings_for_model(
    db: Database, model: str, *, now: dt.datetime, settings: Settings
) -> list[FindingIn]:
    """The latency findings of a model as of `now`: one per regression incident in the last
    `LOOKBACK` (open while the new level lasts) and one per SLO objective breached now."""
    start = now - LOOKBACK
    with db.sessions() as session:
        regressions = detect_regressions(
            session, model=model, start=start, end=now, rollup_tags=settings.rollup_tags
        )
        stored = finding_store.load_findings(
            session, model=model, kinds=[REGRESSION_KIND], start=start, limit=1000
        )
        findings = regression_findings(regressions, stored, bucket_seconds=ANALYSIS_BUCKET_SECONDS)
        findings += slo_findings(session, model, now=now)
    return findings


def regression_findings(
    regressions: Sequence[Regression],
    stored: Sequence[Any],
    *,
    bucket_seconds: int,
) -> list[FindingIn]:
    """One finding per incident: regressions of one series whose onsets are close (several
    percentiles of one change), keyed so that a re-run finds the same finding again."""
    tolerance = dt.timedelta(seconds=ONSET_TOLERANCE_BUCKETS * bucket_seconds)
    incidents: list[list[Regression]] = []
    for regression in sorted(regressions, key=lambda r: (r.series, r.onset_at)):
        last = incidents[-1][0] if incidents else None
        if (
            last
            and last.series == regression.series
            and regression.onset_at - last.onset_at <= tolerance
        ):
            incidents[-1].append(regression)
        else:
            incidents.append([regression])
    incidents = _drop_covered(incidents, tolerance)
    return [_incident_finding(group, stored, tolerance) for group in incidents]


def _drop_covered(
    incidents: list[list[Regression]], tolerance: dt.timedelta
) -> list[list[Regression]]:
    """A model-wide incident that a version's own incident already describes is left out."""
    by_version = [g for g in incidents if g[0].series != latency.ALL]
    return [
        group
        for group in incidents
        if group[0].series != latency.ALL
        or not any(abs(other[0].onset_at - group[0].onset_at) <= tolerance for other in by_version)
    ]


def _incident_finding(
    group: list[Regression], stored: Sequence[Any], tolerance: dt.timedelta
) -> FindingIn:
    worst = max(group, key=lambda r: r.ratio)
    first = min(group, key=lambda r: r.onset_at)
    version = worst.model_version
    scope = f"{worst.model} {version}" if version else worst.model
    cause = ""
    if worst.event:
        cause = f"; {worst.event['kind']} {worst.event.get('model_version') or ''}".rstrip()
        minutes = round(worst.event["seconds_before_onset"] / 60)
        cause += f" {minutes} min before" if minutes > 0 else " at the onset"
    carrier = ""
    if worst.carriers and worst.carriers[0]["explained"] >= 0.5:
        top = worst.carriers[0]
        carrier = f"; carried by {top['dimension']} {top['value']}"
    summary = (
        f"p{worst.percentile:g} of {scope} rose from {worst.before_ms:,.1f} ms to "
        f"{worst.after_ms:,.1f} ms (x{worst.ratio:.2f}) at {first.onset_at:%Y-%m-%d %H:%M} UTC"
        f"{carrier}{cause}"
    )
    return FindingIn(
        kind=REGRESSION_KIND,
        model=worst.model,
        model_version=version,
        window_start=first.before_start,
        window_end=worst.cleared_at or max(r.onset_at for r in group) + tolerance,
        status="open" if any(r.is_open for r in group) else "resolved",
        severity=min(1.0, float(np.log2(worst.ratio)) / 2),
        summary=summary,
        details={
            "series": worst.series,
            "onset_at": first.onset_at.isoformat(),
            "regressions": [_jsonable(r.as_dict()) for r in group],
        },
        dedupe_key=_incident_key(first, stored, tolerance),
    )


def _incident_key(first: Regression, stored: Sequence[Any], tolerance: dt.timedelta) -> str:
    for finding in stored:
        details = finding.details or {}
        if details.get("series") != first.series or "onset_at" not in details:
            continue
        onset = dt.datetime.fromisoformat(details["onset_at"])
        if abs(onset - first.onset_at) <= tolerance:
            return str(finding.dedupe_key)
    return _key(REGRESSION_KIND, first.model, first.series, first.onset_at.isoformat())


def _key(kind: str, *parts: str) -> str:
    digest = hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:40]
    return f"{kind}:{digest}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.datetime | pd.Timestamp):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


# --- SLO breaches ----------------------------------------------------------------------------

SLO_BUCKET_SECONDS = 3600


def slo_findings(session: Session, model: str, *, now: dt.datetime) -> list[FindingIn]:
    """A finding per objective of the model's SLO that the latest hour breaches, with the
    window of hours the breach has lasted (within `LOOKBACK`)."""
    info = model_store.get_model(session, model)
    if info is None:
        return []
    slo = info.slo
    percentiles = [slo.latency_percentile] if slo.latency_percentile is not None else []
    result = latency.latency_series(
        session,
        model=model,
        start=now - LOOKBACK,
        end=now,
        bucket_seconds=SLO_BUCKET_SECONDS,
        by=latency.ALL,
        percentiles=percentiles,
    )
    frame = result.frame.sort_values("bucket_start")
    findings = []
    if slo.latency_percentile is not None and slo.latency_ms is not None:
        column = latency.percentile_column(slo.latency_percentile)
        breached = frame[column].to_numpy(dtype=np.float64) > slo.latency_ms
        finding = _breach(model, "latency", frame, breached, now, column, slo.latency_ms, "ms")
        findings += [finding] if finding else []
    if slo.error_rate_pct is not None:
        breached = frame["error_rate"].to_numpy(dtype=np.float64) * 100 > slo.error_rate_pct
        finding = _breach(
            model, "error_rate", frame, breached, now, "error_rate", slo.error_rate_pct, "%"
        )
        findings += [finding] if finding else []
    return findings


def _breach(
    model: str,
    objective: str,
    frame: pd.DataFrame,
    breached: np.ndarray,
    now: dt.datetime,
    column: str,
    bound: float,
    unit: str,
) -> FindingIn | None:
    """The breach that the latest bucket with traffic is part of, if it is one."""
    latest_hour = now - dt.timedelta(seconds=SLO_BUCKET_SECONDS)
    starts = pd.to_datetime(frame["bucket_start"], utc=True)
    if not len(frame) or not breached[-1] or starts.iloc[-1] < pd.Timestamp(latest_hour).floor("h"):
        return None
    first = len(breached) - 1
    while first > 0 and breached[first - 1]:
        first -= 1
    began = starts.iloc[first].to_pydatetime()
    scale = 100.0 if column == "error_rate" else 1.0
    observed = float(frame[column].iloc[-1]) * scale
    label = "error rate" if column == "error_rate" else column
    return FindingIn(
        kind=SLO_KIND,
        model=model,
        window_start=began,
        window_end=now,
        status="open",
        severity=min(1.0, max(0.0, observed / bound - 1.0)) if bound > 0 else 1.0,
        summary=(
            f"{label} of {model} is {observed:,.2f} {unit}, over its objective of {bound:g} {unit} "
            f"since {began:%Y-%m-%d %H:%M} UTC"
        ),
        details={
            "objective": objective,
            "bound": bound,
            "observed": observed,
            "since": began.isoformat(),
            "hours_breached": int(len(breached) - first),
        },
        dedupe_key=_key(SLO_KIND, model, objective, began.isoformat()),
    )


def _median_observed(values: npt.NDArray[np.float64]) -> float:
    """Median of the non-empty buckets; NaN when every bucket is empty."""
    observed = values[~np.isnan(values)]
    return float(np.median(observed)) if observed.size else math.nan
