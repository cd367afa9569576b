"""The types a diagnosis is made of: what the checks read, and what they conclude.

`DiagnosisInputs` is everything the checks look at, loaded by the pipeline for one model, a
window and a baseline; every check is a pure function of it. A check returns a `CheckResult`
(its verdict and evidence for the checklist) with zero or more candidate `Cause`s, which the
ranker merges and orders.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

from analyzers.histograms import Histogram

Step = Literal["isolate", "data", "infra", "model"]
Status = Literal["pass", "fail", "inconclusive", "skipped"]
CAUSE_KINDS = (
    "deploy",
    "traffic_surge",
    "input_size",
    "data_drift",
    "dependency_latency",
    "gpu_saturation",
    "host_degradation",
    "model_operator",
    "error_spike",
)
#: Causes that explain a slowdown: without a latency or error symptom they are not causes.
SLOWDOWN_KINDS = frozenset(CAUSE_KINDS) - {"data_drift", "error_spike"}


@dataclass(frozen=True)
class SliceStats:
    """Traffic, errors, latency and input size of one slice (a version, a host, the whole
    model) over one period, merged from per-minute rollups."""

    num_requests: int = 0
    num_errors: int = 0
    latency_sum_ms: float = 0.0
    num_with_input_size: int = 0
    input_size_sum: float = 0.0
    histogram: Histogram = field(default_factory=Histogram.empty)

    def merge(self, other: SliceStats) -> SliceStats:
        return SliceStats(
            self.num_requests + other.num_requests,
            self.num_errors + other.num_errors,
            self.latency_sum_ms + other.latency_sum_ms,
            self.num_with_input_size + other.num_with_input_size,
            self.input_size_sum + other.input_size_sum,
            self.histogram.merge(other.histogram),
        )

    def quantile(self, q: float) -> float:
        """The q-quantile of latency in ms; NaN without traffic."""
        value = self.histogram.quantiles([q])[0]
        return math.nan if value is None else value

    @property
    def mean_ms(self) -> float:
        return self.latency_sum_ms / self.num_requests if self.num_requests else math.nan

    @property
    def error_rate(self) -> float:
        return self.num_errors / self.num_requests if self.num_requests else math.nan

    @property
    def mean_input_size(self) -> float:
        if not self.num_with_input_size:
            return math.nan
        return self.input_size_sum / self.num_with_input_size


@dataclass(frozen=True)
class Comparison:
    """One slice in the baseline and in the window."""

    baseline: SliceStats
    window: SliceStats


@dataclass(frozen=True)
class DiagnosisInputs:
    """What the checks read. Frames may be empty (the signal was not collected); every check
    then says `skipped` instead of guessing.

    Attributes:
        overall: the whole model, baseline and window (the window from `compared_from` to
            `compared_until`).
        slices: dimension ("model_version" or a tag key such as "host") -> value -> comparison.
        onset_at: when the change started (a change point in the window), if one was found.
        compared_from: where the window's statistics start when not at the window's start:
            the onset, when it lies inside the window (what came before it is neither
            baseline nor regression, and would dilute the comparison).
        compared_until: where they end when not at the window's end: when latency came back
            down inside the window (a transient episode).
        recent_version_shares: per version, its share of the requests at the end of the
            window (its last quarter): 1.0 for a version that replaced the others, the
            canary's share for a canary.
        minute_series: per minute: bucket_start, period ("baseline"/"window"), num_requests, p95.
        events: timestamp, kind, model_version, traffic_pct, description (both periods and a
            lookback before the baseline).
        feature_drift: per feature: feature, test, statistic, threshold, drifted, kind.
        null_rates: per feature: feature, baseline, window (share of missing values).
        skew: each period against the training reference (see `data.skew_rows`): reference,
            period, feature, issue ("distribution", "missing", "extra", "retyped",
            "unseen_categories"), test, statistic, p_value, threshold, skewed.
        spans: per span name and period: name, period, count, mean_ms, p95_ms, is_root,
            is_dependency, num_traces.
        metrics: per host, resource, metric name and period: host, resource, name, period,
            mean, max, count.
        operator_diff: operators of the newest profiler trace of `operator_versions[1]`
            against `operator_versions[0]`, per profiler step: name, category, base_us,
            target_us, delta_us, is_new.
    """

    model: str
    window: tuple[dt.datetime, dt.datetime]
    baseline: tuple[dt.datetime, dt.datetime]
    overall: Comparison
    slices: dict[str, dict[str, Comparison]] = field(default_factory=dict)
    onset_at: dt.datetime | None = None
    compared_from: dt.datetime | None = None
    compared_until: dt.datetime | None = None
    recent_version_shares: dict[str, float] = field(default_factory=dict)
    minute_series: pd.DataFrame = field(default_factory=pd.DataFrame)
    events: pd.DataFrame = field(default_factory=pd.DataFrame)
    feature_drift: pd.DataFrame = field(default_factory=pd.DataFrame)
    null_rates: pd.DataFrame = field(default_factory=pd.DataFrame)
    skew: pd.DataFrame = field(default_factory=pd.DataFrame)
    spans: pd.DataFrame = field(default_factory=pd.DataFrame)
    metrics: pd.DataFrame = field(default_factory=pd.DataFrame)
    operator_diff: pd.DataFrame = field(default_factory=pd.DataFrame)
    operator_versions: tuple[str, str] | None = None

    @property
    def window_minutes(self) -> float:
        """Minutes of the window that its statistics cover (`compared_from` to
        `compared_until`)."""
        start = self.compared_from or self.window[0]
        end = self.compared_until or self.window[1]
        return max((end - start).total_seconds() / 60.0, 1e-9)

    @property
    def baseline_minutes(self) -> float:
        return max((self.baseline[1] - self.baseline[0]).total_seconds() / 60.0, 1e-9)


@dataclass(frozen=True)
class Cause:
    """A candidate cause: `score` in 0..1 says how strongly the evidence points at it;
    `source` names the check that proposed it (set by the ranker)."""

    kind: str
    score: float
    scope: dict[str, str]
    summary: str
    action: str
    evidence: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "score": round(self.score, 3),
            "scope": self.scope,
            "summary": self.summary,
            "action": self.action,
            "evidence": self.evidence,
        }


@dataclass(frozen=True)
class CheckResult:
    """One check of the checklist: its verdict, a sentence, the numbers behind it."""

    step: Step
    check: str
    status: Status
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    causes: tuple[Cause, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "check": self.check,
            "status": self.status,
            "summary": self.summary,
            "evidence": self.evidence,
        }


@dataclass(frozen=True)
class Symptom:
    """What changed: `metric` in the baseline and in the window; `change` is relative
    (0.5 = +50 %); `is_regression` says whether it is worse beyond noise."""

    metric: str
    baseline: float | None
    current: float | None
    change: float | None
    is_regression: bool
    latency_regressed: bool
    errors_regressed: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "baseline": _round(self.baseline),
            "current": _round(self.current),
            "change": _round(self.change),
            "is_regression": self.is_regression,
        }


def _round(value: float | None) -> float | None:
    if value is None or math.isnan(value):
        return None
    return round(value, 4)
