"""Diagnosis: load what the root-cause checks read for a model, a window and a baseline, then
run them (analyzers.rootcause).

Everything comes from rollups and bounded reads, so the cost grows with the window's length,
not with the number of predictions: latency, traffic, errors and input size from the per-minute
latency rollups (per version and per rolled-up tag), GPU and host metrics aggregated in SQL,
events of the model, and the other signals (features, spans, profiler traces) through their
own bounded loaders.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from analyzers.drift import detect_drift
from analyzers.histograms import Histogram
from analyzers.latency import detect_change_points
from analyzers.rootcause import Comparison, Diagnosis, DiagnosisInputs, SliceStats, diagnose
from analyzers.rootcause.data import homogeneity_p_value, pool_categories, skew_rows
from analyzers.rootcause.model import version_pair
from analyzers.skew import detect_schema_skew
from observe.pipeline import latency
from observe.pipeline.drift import feature_kinds, features_frame
from observe.pipeline.profiles import diff_model_versions
from observe.pipeline.traces import span_duration_periods
from observe.storage import feature_profiles as feature_store
from observe.storage import references as reference_store
from observe.storage import rollups as rollup_store
from observe.storage import signals as signal_store

BASELINE = "baseline"
WINDOW = "window"
VERSION_DIM = "model_version"
#: Events this long before the baseline still count as "the change before the onset".
EVENT_LOOKBACK = dt.timedelta(hours=6)
#: A version serving less than this share of the baseline is new; tag slices leave new
#: versions out, so a canary on one host does not make that host look degraded.
NEW_VERSION_SHARE = 0.05
#: An onset inside the window moves the window's statistics to start there when at least this
#: much of the window follows it ...
MIN_COMPARED = dt.timedelta(minutes=5)
#: ... and latency stepped up there by at least this factor (median per-minute p95 of the half
#: hour after the onset over the half hour before).
MIN_ONSET_STEP = 1.1
#: A version's share "at the end of the window": over its last quarter, at least this long.
RECENT_MIN = dt.timedelta(minutes=5)
#: Records per period read for feature drift and missing values: a uniform sample by id.
FEATURE_SAMPLE_ROWS = 5_000
#: Fewer records than this in a period: too few to judge feature drift.
MIN_FEATURE_ROWS = 100
#: A diagnosis asks whether inputs changed materially: a feature drifts when its distance
#: (Evidently's large-sample tests, threshold 0.1) says the change is large and its
#: significance test (Evidently's small-sample tests) says it is not sampling noise. Distances
#: alone are noisy on small samples; p-values alone flag negligible changes in large ones.
DISTANCE_TESTS = {"numeric": "wasserstein", "categorical": "jensenshannon"}

#: Span names that call something outside the model: feature stores, caches, databases,
#: remote services. Client and producer spans are dependencies whatever their name.
DEPENDENCY_NAME = re.compile(
    r"feature[ _.-]?store|feast|lookup|fetch|cache|redis|memcache|\bdb\b|database|sql|postgres"
    r"|mysql|mongo|dynamo|cassandra|elastic|\bhttp|grpc|\brpc\b|\bs3\b|kafka|queue|vector|"
    r"retriev|upstream|downstream|external|remote|call",
    re.IGNORECASE,
)
#: Span names of the model's own work, never a dependency.
MODEL_NAME = re.compile(
    r"forward|infer|predict|model|preprocess|postprocess|tokeni|decode|generate|score",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Windows:
    """The window under diagnosis and the baseline it is compared with (whole minutes)."""

    start: dt.datetime
    end: dt.datetime
    baseline_start: dt.datetime
    baseline_end: dt.datetime

    @classmethod
    def resolve(
        cls,
        start: dt.datetime,
        end: dt.datetime,
        baseline_start: dt.datetime | None = None,
        baseline_end: dt.datetime | None = None,
    ) -> Windows:
        """Align to minutes; the baseline defaults to the same length just before the window.

        Raises:
            ValueError: an empty or inverted window or baseline.
        """
        start, end = latency.align_window(start, end, 60)
        if baseline_start is None and baseline_end is None:
            baseline_start, baseline_end = start - (end - start), start
        elif baseline_start is None or baseline_end is None:
            raise ValueError("give both baseline_start and baseline_end, or neither")
        baseline_start, baseline_end = latency.align_window(baseline_start, baseline_end, 60)
        if baseline_end > start:
            raise ValueError("the baseline must end before the window starts")
        return cls(start, end, baseline_start, baseline_end)

    def from_onset(self, onset: dt.datetime | None, recovery: dt.datetime | None = None) -> Windows:
        """The part of the window from `onset` (when it lies inside the window) to `recovery`
        (when latency came back down inside it), if at least `MIN_COMPARED` long; else the
        window itself. The baseline stays."""
        start = onset if onset is not None and onset > self.start else self.start
        end = recovery if recovery is not None and start < recovery < self.end else self.end
        if (start, end) == (self.start, self.end) or end - start < MIN_COMPARED:
            return self
        return dataclasses.replace(self, start=start, end=end)

    def period_of(self, times: pd.Series) -> pd.Series:
        """BASELINE, WINDOW or None for each time."""
        stamps = pd.to_datetime(times, utc=True)
        period = pd.Series(None, index=times.index, dtype=object)
        period[(stamps >= self.baseline_start) & (stamps < self.baseline_end)] = BASELINE
        period[(stamps >= self.start) & (stamps < self.end)] = WINDOW
        return period


def run_diagnosis(
    session: Session,
    *,
    model: str,
    windows: Windows,
    rollup_tags: Sequence[str],
) -> Diagnosis:
    """Load the inputs of a diagnosis and walk the checklist."""
    return diagnose(load_inputs(session, model=model, windows=windows, rollup_tags=rollup_tags))


def load_inputs(
    session: Session, *, model: str, windows: Windows, rollup_tags: Sequence[str]
) -> DiagnosisInputs:
    """Everything the checks read, for one model. When latency stepped up inside the window,
    the window's statistics (latency, traffic, metrics, spans, features) are taken from that
    onset on: the minutes before it are neither baseline nor regression."""
    frame = _rollup_frame(session, model, windows)
    minutes = _minute_series(frame)
    onset, compared = compared_windows(minutes, windows)
    versions = frame.assign(period=compared.period_of(frame["bucket_start"]))
    versions = versions[versions["period"].notna()]
    overall = _comparison(_aggregate(versions, []))
    version_slices = _slices(versions, VERSION_DIM)
    stable = _stable_versions(version_slices, overall)
    slices = {VERSION_DIM: version_slices}
    for tag in rollup_tags:
        tag_frame = _rollup_frame(session, model, compared, dim_key=tag)
        if stable:
            tag_frame = tag_frame[tag_frame["model_version"].isin(stable)]
        if not tag_frame.empty:
            slices[tag] = _slices(tag_frame.rename(columns={"dim_value": tag}), tag)
    hosts = sorted(slices.get("host", {}))
    inputs = DiagnosisInputs(
        model=model,
        window=(windows.start, windows.end),
        baseline=(windows.baseline_start, windows.baseline_end),
        overall=overall,
        slices=slices,
        minute_series=minutes,
        onset_at=onset,
        compared_from=compared.start if compared.start != windows.start else None,
        compared_until=compared.end if compared.end != windows.end else None,
        recent_version_shares=_recent_shares(frame, windows),
        events=_events(session, model, windows),
        metrics=_metrics(session, compared, hosts),
        spans=_spans(session, model, compared),
    )
    inputs = _with_feature_drift(session, inputs, compared)
    return _with_operator_diff(session, inputs, windows)


def _recent_shares(frame: pd.DataFrame, windows: Windows) -> dict[str, float]:
    """Each version's share of the requests in the window's last quarter (at least
    `RECENT_MIN`, at most the whole window)."""
    length = windows.end - windows.start
    since = windows.end - min(max(length / 4, RECENT_MIN), length)
    recent = frame[pd.to_datetime(frame["bucket_start"], utc=True) >= since]
    counts = recent.groupby("model_version")["num_requests"].sum()
    total = counts.sum()
    if total <= 0:
        return {}
    return {str(version): float(count / total) for version, count in counts.items()}


def _rollup_frame(
    session: Session, model: str, windows: Windows, *, dim_key: str = ""
) -> pd.DataFrame:
    frame = rollup_store.load_latency_rollups(
        session, model=model, start=windows.baseline_start, end=windows.end, dim_key=dim_key
    )
    frame["period"] = windows.period_of(frame["bucket_start"])
    return frame[frame["period"].notna()]


def _aggregate(frame: pd.DataFrame, keys: list[str]) -> dict[tuple[str, ...], SliceStats]:
    """SliceStats per (period, *keys) group of rollup rows, histograms merged."""
    result: dict[tuple[str, ...], SliceStats] = {}
    if frame.empty:
        return result
    for key, group in frame.groupby(["period", *keys], sort=True):
        histograms = [Histogram.from_bytes(blob) for blob in group["histogram"]]
        result[tuple(str(k) for k in key)] = SliceStats(
            num_requests=int(group["num_requests"].sum()),
            num_errors=int(group["num_errors"].sum()),
            latency_sum_ms=float(group["latency_sum_ms"].sum()),
            num_with_input_size=int(group["num_with_input_size"].sum()),
            input_size_sum=float(group["input_size_sum"].sum()),
            histogram=_merge_histograms(histograms),
        )
    return result


def _merge_histograms(histograms: list[Histogram]) -> Histogram:
    if not histograms:
        return Histogram.empty()
    indices = np.concatenate([h.indices for h in histograms]).astype(np.int64)
    counts = np.concatenate([h.counts for h in histograms])
    merged, inverse = np.unique(indices, return_inverse=True)
    return Histogram(merged.astype(np.int16), np.bincount(inverse, weights=counts).astype(np.int64))


def _comparison(stats: dict[tuple[str, ...], SliceStats]) -> Comparison:
    return Comparison(stats.get((BASELINE,), SliceStats()), stats.get((WINDOW,), SliceStats()))


def _slices(frame: pd.DataFrame, dim: str) -> dict[str, Comparison]:
    stats = _aggregate(frame, [dim])
    values = sorted({key[1] for key in stats})
    return {
        value: Comparison(
            stats.get((BASELINE, value), SliceStats()), stats.get((WINDOW, value), SliceStats())
        )
        for value in values
    }


def _stable_versions(slices: dict[str, Comparison], overall: Comparison) -> list[str]:
    total = max(overall.baseline.num_requests, 1)
    return [v for v, c in slices.items() if c.baseline.num_requests / total >= NEW_VERSION_SHARE]


def _minute_series(frame: pd.DataFrame) -> pd.DataFrame:
    """Per minute, every version merged: requests, p95, mean latency and mean input size."""
    columns = ["bucket_start", "period", "num_requests", "p95", "mean_ms", "mean_input_size"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    origin = frame["bucket_start"].min().to_pydatetime()
    last = frame["bucket_start"].max().to_pydatetime()
    num_buckets = int((last - origin).total_seconds()) // 60 + 1
    stats = latency.summarize_rollups(
        frame, pd.Series("all", index=frame.index), origin, 60, num_buckets, [0.95]
    ).rename(columns={"q0": "p95"})
    sizes = frame.groupby("bucket_start")[["input_size_sum", "num_with_input_size"]].sum()
    mean_input = sizes["input_size_sum"] / sizes["num_with_input_size"].replace(0, np.nan)
    stats["bucket_start"] = pd.to_datetime(stats["bucket_start"], utc=True)
    stats["mean_input_size"] = stats["bucket_start"].map(
        dict(zip(pd.to_datetime(mean_input.index, utc=True), mean_input.to_numpy(), strict=True))
    )
    periods = frame.drop_duplicates("bucket_start").set_index("bucket_start")["period"]
    stats["period"] = stats["bucket_start"].map(
        dict(zip(pd.to_datetime(periods.index, utc=True), periods.to_numpy(), strict=True))
    )
    return stats[columns]


def find_onset(minutes: pd.DataFrame, windows: Windows) -> dt.datetime | None:
    """When latency stepped up: the first change point of the per-minute p95 (baseline and
    window together) that starts a higher level, from a few minutes before the window on."""
    return find_episode(minutes, windows)[0]


def find_episode(
    minutes: pd.DataFrame, windows: Windows
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """When latency stepped up (`find_onset`) and when it came back down: the first later
    change point that starts a lower level again, or None while it lasts."""
    episode = _episode(minutes, windows)
    return episode[0], episode[1]


def _episode(
    minutes: pd.DataFrame, windows: Windows
) -> tuple[dt.datetime | None, dt.datetime | None, float]:
    """Onset, recovery, and the step at the onset (median per-minute p95 after it over before)."""
    if minutes.empty:
        return None, None, 1.0
    series = minutes.sort_values("bucket_start")
    values = series["p95"].to_numpy(dtype=float)
    times = list(series["bucket_start"])
    earliest = windows.start - dt.timedelta(minutes=10)
    points = sorted(detect_change_points(values))
    for position, index in enumerate(points):
        step = _level_ratio(values, index)
        if times[index] >= earliest and step > 1:
            recovery = next(
                (later for later in points[position + 1 :] if _level_ratio(values, later) < 1),
                None,
            )
            onset = pd.Timestamp(times[index]).to_pydatetime()
            if recovery is None:
                return onset, None, step
            return onset, pd.Timestamp(times[recovery]).to_pydatetime(), step
    return None, None, 1.0


def _level_ratio(values: np.ndarray, index: int) -> float:
    """Median of the (up to) 30 points from `index` on over that of the 30 before it."""
    before = np.nanmedian(values[max(0, index - 30) : index])
    after = np.nanmedian(values[index : index + 30])
    return float(after / before) if before > 0 else math.inf


def compared_windows(minutes: pd.DataFrame, windows: Windows) -> tuple[dt.datetime | None, Windows]:
    """The onset, and the part of the window to compare with the baseline: from the onset
    to the recovery when latency stepped up by at least `MIN_ONSET_STEP` (a step, not a
    ramp: on a daily traffic ramp the change points fall anywhere, and comparing the part after
    one would pick the busiest hours), else the whole window."""
    onset, recovery, step = _episode(minutes, windows)
    if step < MIN_ONSET_STEP:
        return onset, windows
    return onset, windows.from_onset(onset, recovery)


def _events(session: Session, model: str, windows: Windows) -> pd.DataFrame:
    events = signal_store.load_events(
        session, model=model, start=windows.baseline_start - EVENT_LOOKBACK, end=windows.end
    )
    return pd.DataFrame(
        [
            {
                "timestamp": e.timestamp,
                "kind": e.kind,
                "model_version": e.model_version,
                "traffic_pct": e.traffic_pct,
                "description": e.description,
            }
            for e in events
        ],
        columns=["timestamp", "kind", "model_version", "traffic_pct", "description"],
    )


def _metrics(session: Session, windows: Windows, hosts: Sequence[str]) -> pd.DataFrame:
    """Per host, resource, metric and period: mean, max and count of the samples; of the
    model's hosts when records name them and samples exist for them, else of every host
    (records may name a host differently from its metrics, e.g. a pod's hostname)."""
    frame = _summarize_metrics(session, windows, hosts)
    if frame.empty and hosts:
        frame = _summarize_metrics(session, windows, [])
    return frame


def _summarize_metrics(session: Session, windows: Windows, hosts: Sequence[str]) -> pd.DataFrame:
    frames = []
    for period, (start, end) in (
        (BASELINE, (windows.baseline_start, windows.baseline_end)),
        (WINDOW, (windows.start, windows.end)),
    ):
        frame = signal_store.summarize_metric_samples(
            session, start=start, end=end, hosts=hosts or None
        )
        frame["period"] = period
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _with_operator_diff(
    session: Session, inputs: DiagnosisInputs, windows: Windows
) -> DiagnosisInputs:
    """Add the operator diff of the previous and the new version's profiler traces (those
    nearest the window), when both versions have one."""
    pair = version_pair(inputs)
    if pair is None:
        return inputs
    diff = diff_model_versions(session, inputs.model, pair[0], pair[1], near=windows.end)
    if diff is None:
        return inputs
    # Per profiler step: the diff is per step already when the step counts differ, else totals.
    steps = diff.base.num_steps if not diff.per_step and diff.base.num_steps > 0 else 1
    frame = pd.DataFrame(
        [
            {
                "name": op.name,
                "category": op.category,
                "base_us": op.base_self_us / steps,
                "target_us": op.target_self_us / steps,
                "delta_us": op.delta_self_us / steps,
                "is_new": op.status == "new",
            }
            for op in diff.operators
        ],
        columns=["name", "category", "base_us", "target_us", "delta_us", "is_new"],
    )
    return dataclasses.replace(inputs, operator_diff=frame, operator_versions=pair)


def _spans(session: Session, model: str, windows: Windows) -> pd.DataFrame:
    """Span durations per name and period, dependencies marked by kind or name: of the spans
    linked to the model, else of the service named like the model (spans that name no model
    and carry no trace id of a record)."""
    spans = pd.DataFrame()
    for dimension in ({"model": model}, {"service_name": model}):
        spans = span_duration_periods(
            session,
            **dimension,
            baseline_start=windows.baseline_start,
            baseline_end=windows.baseline_end,
            start=windows.start,
            end=windows.end,
        )
        if not spans.empty:
            break
    if spans.empty:
        return spans
    by_name = spans["name"].map(is_dependency_name)
    spans["is_dependency"] = (spans["is_dependency"] | by_name) & ~spans["is_root"]
    return spans


def is_dependency_name(name: str) -> bool:
    """Whether a span's name says it calls out of the model (and not that it is model work)."""
    return bool(DEPENDENCY_NAME.search(name)) and not MODEL_NAME.search(name)


def _with_feature_drift(
    session: Session, inputs: DiagnosisInputs, windows: Windows
) -> DiagnosisInputs:
    """Add per-feature drift of the window against the baseline, the missing-value shares,
    and skew of both periods against the training reference, from a uniform sample of each
    period's records."""
    sides = []
    for stats, (start, end) in (
        (inputs.overall.baseline, (windows.baseline_start, windows.baseline_end)),
        (inputs.overall.window, (windows.start, windows.end)),
    ):
        every = max(1, -(-stats.num_requests // FEATURE_SAMPLE_ROWS))
        rows = feature_store.load_window_features(
            session, model=inputs.model, start=start, end=end, sample_every=every
        )
        sides.append(features_frame(rows) if not rows.empty else pd.DataFrame())
    baseline, window = sides
    if len(baseline) < MIN_FEATURE_ROWS or len(window) < MIN_FEATURE_ROWS:
        return inputs
    result, drift = material_drift(baseline, window)
    nulls = pd.DataFrame(
        {
            "feature": [f.feature for f in result.features],
            "baseline": [f.null_share_reference for f in result.features],
            "window": [f.null_share_current for f in result.features],
        }
    )
    skew = _skew(session, inputs, baseline, window)
    return dataclasses.replace(inputs, feature_drift=drift, null_rates=nulls, skew=skew)


def material_drift(baseline: pd.DataFrame, window: pd.DataFrame) -> tuple[Any, pd.DataFrame]:
    """Per feature: the distance test's statistic and threshold, a two-sample significance
    test's p-value, and `drifted` when the distance crosses its threshold (the check then asks
    the p-value to be significant across all features).

    Categorical features are compared with their rare categories pooled (`pool_categories`),
    and their significance is the chi-square test of homogeneity; numeric features' is the
    KS test, at any sample size (the default tests of large samples are distances only)."""
    kinds = feature_kinds(baseline, window)
    categorical = [n for n, k in kinds.items() if k == "categorical" and n in baseline.columns]
    baseline, window = baseline.copy(), window.copy()
    for name in categorical:
        baseline[name], window[name] = pool_categories(baseline[name], window[name])
    tests = {name: DISTANCE_TESTS[kind] for name, kind in kinds.items() if kind in DISTANCE_TESTS}
    distances = detect_drift(baseline, window, kinds=kinds, tests=tests)
    numeric = [f.feature for f in distances.features if f.kind == "numeric"]
    p_values: dict[str, float | None] = {}
    if numeric:
        significance = detect_drift(
            baseline, window, features=numeric, kinds=kinds, tests=dict.fromkeys(numeric, "ks")
        )
        p_values = {f.feature: f.p_value for f in significance.features}
    for name in categorical:
        p_values[name] = homogeneity_p_value(baseline[name], window[name])
    frame = distances.to_frame()
    frame["p_value"] = frame["feature"].map(p_values)
    return distances, frame


def _skew(
    session: Session, inputs: DiagnosisInputs, baseline: pd.DataFrame, window: pd.DataFrame
) -> pd.DataFrame:
    """Skew of each period against the training reference of the window's busiest version
    (else the model's newest reference); empty without one."""
    versions = inputs.slices.get(VERSION_DIM, {})
    busiest = max(versions, key=lambda v: versions[v].window.num_requests, default=None)
    reference = reference_store.find_reference_dataset(
        session, model=inputs.model, model_version=busiest
    ) or reference_store.find_reference_dataset(session, model=inputs.model)
    if reference is None:
        return pd.DataFrame()
    every = max(1, -(-reference.num_rows_stored // FEATURE_SAMPLE_ROWS))
    training = reference_store.load_reference_rows(session, reference.id, sample_every=every)
    frames = []
    for period, serving in ((BASELINE, baseline), (WINDOW, window)):
        features = [c for c in training.columns if c in serving.columns]
        if not features or len(training) < MIN_FEATURE_ROWS:
            continue
        _, distribution = material_drift(training[features], serving[features])
        schema = detect_schema_skew(
            training,
            serving,
            reference_types=reference.feature_types,
            categorical=list(distribution.loc[distribution["kind"] == "categorical", "feature"]),
        )
        frames.append(skew_rows(schema, distribution, period, reference.name))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
