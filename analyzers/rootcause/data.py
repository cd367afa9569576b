"""Step 2 of the checklist, data: did the inputs change (size, distribution, missing values),
or did an upstream dependency seen in the traces get slower?

Input size is judged by how much of the latency rise it predicts: a line fitted to per-minute
mean latency against per-minute mean input size (within each period) says what latency the
window's inputs alone would give. A dependency is judged by how much of the request's added time its
added duration accounts for.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from analyzers.rootcause.scoring import (
    MIN_REQUESTS,
    finite,
    fmt_ms,
    fmt_pct,
    fmt_ratio,
    json_rows,
    ramp,
    ratio,
)
from analyzers.rootcause.types import Cause, CheckResult, DiagnosisInputs, Symptom
from analyzers.skew import SchemaSkew

#: Mean input size up by this factor is a shift worth explaining.
INPUT_RATIO = 1.15
#: Missing values up by this many points is a data problem.
NULL_RATE_DELTA = 0.1
#: Span duration up by this factor ...
SPAN_RATIO = 1.3
#: ... accounting for at least this share of the request's added time.
SPAN_MIN_SHARE = 0.25
MIN_SPANS = 10
MAX_DRIFT_CAUSES = 3
#: Family-wise significance level of the p-value drift tests across a model's features.
DRIFT_ALPHA = 0.05
#: Categories unseen in training matter when they are at least this share of serving rows
#: (a rare value missing from a sample of the training data is not a schema change).
UNSEEN_MIN_SHARE = 0.01
#: Drift tests whose statistic is judged by its p-value.
P_VALUE_TESTS = frozenset({"ks", "chisquare", "z"})
#: Categories expected fewer times than this in the smaller sample are pooled before a
#: categorical feature is compared (the chi-square test's rule of thumb) ...
MIN_EXPECTED_PER_CATEGORY = 5.0
#: ... and so are all but this many of the most common: a distance over thousands of sparse
#: categories (merchant or user ids) is large between any two samples of the same data.
MAX_CATEGORIES = 20
RARE_CATEGORY = "(rare)"


def check_input_size(inputs: DiagnosisInputs, symptom: Symptom) -> CheckResult:
    """Did requests get bigger (tokens, tensor elements, bytes), enough to explain the rise?"""
    base, win = inputs.overall.baseline, inputs.overall.window
    if base.num_with_input_size < MIN_REQUESTS or win.num_with_input_size < MIN_REQUESTS:
        return CheckResult("data", "input_size", "skipped", "records carry no input_size")
    growth = ratio(win.mean_input_size, base.mean_input_size)
    explained = _explained_by_input(inputs)
    evidence = {
        "baseline_mean_input_size": finite(base.mean_input_size),
        "window_mean_input_size": finite(win.mean_input_size),
        "ratio": finite(growth),
        "share_of_latency_rise_explained": finite(explained),
    }
    summary = (
        f"mean input size {base.mean_input_size:,.1f} -> {win.mean_input_size:,.1f} "
        f"({fmt_ratio(growth)})"
    )
    if math.isnan(growth) or growth < INPUT_RATIO:
        return CheckResult("data", "input_size", "pass", summary, evidence)
    if not symptom.latency_regressed or math.isnan(explained):
        return CheckResult("data", "input_size", "fail", summary, evidence)
    score = ramp(growth, 1.1, 1.6) * min(max(explained, 0.0), 1.0)
    cause = Cause(
        "input_size",
        score,
        {"feature": "input_size"},
        f"requests got bigger: {summary}, which accounts for {fmt_pct(explained)} of the "
        "latency rise",
        "Find who sends the larger inputs; cap or batch them, or scale for the new size",
        evidence,
    )
    return CheckResult("data", "input_size", "fail", cause.summary, evidence, (cause,))


def _explained_by_input(inputs: DiagnosisInputs) -> float:
    """Share of the mean-latency rise that the input-size change predicts."""
    base, win = inputs.overall.baseline, inputs.overall.window
    rise = win.mean_ms - base.mean_ms
    if not rise > 0:
        return math.nan
    slope = _latency_per_input(inputs.minute_series)
    if math.isnan(slope):
        predicted = base.mean_ms * ratio(win.mean_input_size, base.mean_input_size)
    else:
        predicted = base.mean_ms + slope * (win.mean_input_size - base.mean_input_size)
    return (predicted - base.mean_ms) / rise


def _latency_per_input(series: pd.DataFrame) -> float:
    """Slope (ms per unit of input) of per-minute mean latency on mean input size, fitted
    within each period (both centred on their period's means), so that a step between the
    periods caused by something else does not pass for a size effect. NaN when the minutes do
    not span enough input sizes to fit it."""
    columns = ["mean_ms", "mean_input_size", "period"]
    if series.empty or not set(columns) <= set(series.columns):
        return math.nan
    frame = series[columns].dropna()
    if len(frame) < 10:
        return math.nan
    centred = frame[["mean_ms", "mean_input_size"]] - frame.groupby("period")[
        ["mean_ms", "mean_input_size"]
    ].transform("mean")
    x = centred["mean_input_size"].to_numpy(dtype=float)
    y = centred["mean_ms"].to_numpy(dtype=float)
    if x.std() <= 0 or y.std() <= 0 or np.corrcoef(x, y)[0, 1] < 0.3:
        return math.nan
    slope = float((x * y).sum() / (x * x).sum())
    return slope if slope > 0 else math.nan


def check_feature_drift(inputs: DiagnosisInputs, symptom: Symptom) -> CheckResult:
    """Did feature distributions move between the baseline and the window?"""
    drift = inputs.feature_drift
    if drift.empty:
        return CheckResult("data", "feature_drift", "skipped", "no features recorded")
    drifted = drift[drift["drifted"].astype(bool) & _significant(drift)].copy()
    evidence = {"features": json_rows(drift)}
    if drifted.empty:
        summary = f"none of {len(drift)} features drifted"
        return CheckResult("data", "feature_drift", "pass", summary, evidence)
    drifted["strength"] = [_drift_strength(row) for _, row in drifted.iterrows()]
    drifted = drifted.sort_values("strength", ascending=False)
    causes = tuple(_drift_cause(row) for _, row in drifted.head(MAX_DRIFT_CAUSES).iterrows())
    names = ", ".join(drifted["feature"].astype(str).head(5))
    summary = f"{len(drifted)} of {len(drift)} features drifted: {names}"
    return CheckResult("data", "feature_drift", "fail", summary, evidence, causes)


def _significant(drift: pd.DataFrame) -> pd.Series:
    """Tests with a p-value count only below 0.05 / number of features (Bonferroni): many
    features tested at 0.05 each would otherwise flag one in twenty on unchanged data."""
    if "p_value" not in drift.columns:
        return pd.Series(True, index=drift.index)
    p_values = pd.to_numeric(drift["p_value"], errors="coerce")
    return p_values.isna() | (p_values < DRIFT_ALPHA / max(len(drift), 1))


def _drift_strength(row: pd.Series) -> float:
    """0..1: how far past its threshold a drifted feature's test is (a distance's ratio to
    its threshold; for a p-value test, how many orders of magnitude below it)."""
    if str(row.get("test")) in P_VALUE_TESTS:
        p_value = float(row["p_value"])
        return ramp(-math.log10(max(p_value, 1e-300)), 2.0, 12.0)
    return ramp(ratio(float(row["statistic"]), float(row["threshold"])), 1.0, 4.0)


def _drift_cause(row: pd.Series) -> Cause:
    feature = str(row["feature"])
    return Cause(
        "data_drift",
        0.35 + 0.35 * float(row["strength"]),
        {"feature": feature},
        f"feature {feature} drifted ({row['test']} = {float(row['statistic']):.4g}, "
        f"threshold {float(row['threshold']):.4g})",
        f"Inspect feature {feature}: compare its recent values with the baseline and check the "
        "pipeline that produces it",
        {"test": row["test"], "statistic": finite(float(row["statistic"]))},
    )


def pool_categories(baseline: pd.Series, window: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Both samples of a categorical feature with the rare categories pooled into
    `RARE_CATEGORY`: those expected fewer than `MIN_EXPECTED_PER_CATEGORY` times in the smaller
    sample, and all but the `MAX_CATEGORIES` most common of both samples together. A value
    that becomes common (a new merchant flooding in) is among the most common, and counts;
    so does a shift of traffic into the rare values, as a larger pooled share. Missing values
    stay missing."""
    counts = pd.concat([baseline, window], ignore_index=True).dropna().value_counts()
    num_smaller = min(baseline.notna().sum(), window.notna().sum())
    total = baseline.notna().sum() + window.notna().sum()
    if num_smaller == 0 or len(counts) <= 2:
        return baseline, window
    expected = counts * num_smaller / total
    keep = set(counts.index[(expected >= MIN_EXPECTED_PER_CATEGORY)][:MAX_CATEGORIES])
    if len(keep) >= len(counts) - 1:
        return baseline, window
    return _pooled(baseline, keep), _pooled(window, keep)


def _pooled(values: pd.Series, keep: set[Any]) -> pd.Series:
    values = values.astype(object)
    return values.where(values.isna() | values.isin(keep), RARE_CATEGORY)


def homogeneity_p_value(baseline: pd.Series, window: pd.Series) -> float:
    """p-value of the chi-square test of homogeneity: whether two samples of a categorical
    feature come from the same distribution, both treated as samples (unlike the
    goodness-of-fit chi-square, which takes the reference's shares as exact and so finds
    drift between two samples of the same data). Pool rare categories first
    (`pool_categories`). NaN when either sample is empty or there is one category."""
    table = pd.concat(
        [baseline.dropna().value_counts(), window.dropna().value_counts()], axis=1
    ).fillna(0)
    if len(table) < 2 or (table.sum(axis=0) == 0).any():
        return math.nan
    return float(stats.chi2_contingency(table.to_numpy(), correction=False)[1])


def check_null_rates(inputs: DiagnosisInputs, symptom: Symptom) -> CheckResult:
    """Did any feature start arriving empty?"""
    rates = inputs.null_rates
    if rates.empty:
        return CheckResult("data", "null_rates", "skipped", "no features recorded")
    delta = rates["window"] - rates["baseline"]
    worse = rates.assign(delta=delta)[delta >= NULL_RATE_DELTA].sort_values(
        "delta", ascending=False
    )
    evidence = {"features": json_rows(rates.assign(delta=delta))}
    if worse.empty:
        return CheckResult("data", "null_rates", "pass", "missing values unchanged", evidence)
    causes = tuple(
        Cause(
            "data_drift",
            0.35 + 0.4 * ramp(float(row["delta"]), NULL_RATE_DELTA, 0.5),
            {"feature": str(row["feature"])},
            f"feature {row['feature']} is missing in {fmt_pct(row['window'])} of requests "
            f"(was {fmt_pct(row['baseline'])})",
            f"Find why {row['feature']} stopped arriving (upstream join, feature store, client)",
            {"baseline": finite(row["baseline"]), "window": finite(row["window"])},
        )
        for _, row in worse.head(MAX_DRIFT_CAUSES).iterrows()
    )
    return CheckResult("data", "null_rates", "fail", causes[0].summary, evidence, causes)


SKEW_COLUMNS = [
    "reference",
    "period",
    "feature",
    "issue",
    "test",
    "statistic",
    "p_value",
    "threshold",
    "skewed",
]


def skew_rows(
    schema: SchemaSkew, distribution: pd.DataFrame, period: str, reference: str
) -> pd.DataFrame:
    """One row per feature (distribution skew: the rows of a drift frame, `drifted` read as
    skewed) and per schema problem of one period against the training reference."""
    rows = [
        {
            "feature": row["feature"],
            "issue": "distribution",
            "test": row["test"],
            "statistic": row["statistic"],
            "p_value": row.get("p_value"),
            "threshold": row["threshold"],
            "skewed": bool(row["drifted"]),
        }
        for _, row in distribution.iterrows()
    ]
    problems = {
        "missing": schema.missing,
        "extra": schema.extra,
        "retyped": tuple(schema.retyped),
        "unseen_categories": tuple(
            name
            for name, found in schema.unseen_categories.items()
            if found["share"] >= UNSEEN_MIN_SHARE
        ),
    }
    rows += [
        {"feature": feature, "issue": issue, "skewed": True}
        for issue, features in problems.items()
        for feature in features
    ]
    frame = pd.DataFrame(rows, columns=SKEW_COLUMNS[2:])
    frame.insert(0, "period", period)
    frame.insert(0, "reference", reference)
    return frame


def check_skew(inputs: DiagnosisInputs, symptom: Symptom) -> CheckResult:
    """Training-serving skew against the model's reference, in the window and the baseline:
    skew already there in the baseline is a standing condition; skew new in the window is a
    change worth a cause."""
    skew = inputs.skew
    if skew.empty:
        return CheckResult("data", "skew", "skipped", "no training reference data set")
    flagged = skew[skew["skewed"].astype(bool) & _significant(skew)]
    window = flagged[flagged["period"] == "window"]
    standing = set(
        zip(
            flagged.loc[flagged["period"] == "baseline", "feature"],
            flagged.loc[flagged["period"] == "baseline", "issue"],
            strict=True,
        )
    )
    new = window[
        [(f, i) not in standing for f, i in zip(window["feature"], window["issue"], strict=True)]
    ]
    evidence = {"reference": str(skew["reference"].iloc[0]), "rows": json_rows(skew)}
    if window.empty:
        return CheckResult("data", "skew", "pass", "serving matches the training data", evidence)
    names = ", ".join(f"{f} ({i})" for f, i in zip(window["feature"], window["issue"], strict=True))
    summary = f"skewed against training: {names}"
    if new.empty:
        return CheckResult("data", "skew", "fail", summary + " (already in the baseline)", evidence)
    causes = tuple(_skew_cause(row) for _, row in new.head(MAX_DRIFT_CAUSES).iterrows())
    return CheckResult("data", "skew", "fail", summary, evidence, causes)


def _skew_cause(row: pd.Series) -> Cause:
    feature = str(row["feature"])
    issue = str(row["issue"])
    if issue == "distribution":
        strength = _drift_strength(row)
        detail = f"{row['test']} = {float(row['statistic']):.4g} against training"
    else:
        strength = 1.0
        detail = issue.replace("_", " ") + " against the training schema"
    return Cause(
        "data_drift",
        0.35 + 0.3 * strength,
        {"feature": feature},
        f"feature {feature} newly skewed from training: {detail}",
        f"Compare how {feature} is computed in serving and in training (feature pipeline, "
        "units, defaults for missing values)",
        {"issue": issue},
    )


def check_dependencies(inputs: DiagnosisInputs, symptom: Symptom) -> CheckResult:
    """Did a downstream call seen in the traces (feature store, database, remote model) slow
    down enough to account for the request's added time?"""
    spans = inputs.spans
    if spans.empty or not spans["is_dependency"].any():
        return CheckResult("data", "dependencies", "skipped", "no dependency spans in the traces")
    table = span_changes(spans, inputs)
    dependencies = table.loc[table["is_dependency"].astype(bool)]
    evidence = {"spans": json_rows(dependencies)}
    grown = dependencies[
        (dependencies["ratio"] >= SPAN_RATIO) & (dependencies["delta_ms"] >= 0.5)
    ].sort_values("share", ascending=False)
    if grown.empty:
        return CheckResult("data", "dependencies", "pass", "dependency latency unchanged", evidence)
    causes = tuple(
        _dependency_cause(row)
        for _, row in grown.iterrows()
        if symptom.latency_regressed and row["share"] >= SPAN_MIN_SHARE
    )
    top = grown.iloc[0]
    summary = (
        f"{top['name']} took {fmt_ms(top['baseline_mean_ms'])} -> {fmt_ms(top['window_mean_ms'])} "
        f"({fmt_ratio(top['ratio'])}), {fmt_pct(top['share'])} of the request's added time"
    )
    return CheckResult("data", "dependencies", "fail", summary, evidence, causes)


def _dependency_cause(row: pd.Series) -> Cause:
    name = str(row["name"])
    score = (0.5 + 0.5 * ramp(float(row["ratio"]), SPAN_RATIO, 3.0)) * min(float(row["share"]), 1)
    return Cause(
        "dependency_latency",
        score,
        {"span": name},
        f"dependency {name} slowed: {fmt_ms(row['baseline_mean_ms'])} -> "
        f"{fmt_ms(row['window_mean_ms'])} per call, {fmt_pct(row['share'])} of the added time",
        f"Look at dependency {name}: its health, cache hit rate and recent changes; add a "
        "timeout or fallback",
        {"ratio": finite(row["ratio"]), "share": finite(row["share"])},
    )


def span_changes(spans: pd.DataFrame, inputs: DiagnosisInputs) -> pd.DataFrame:
    """Per span name: mean duration in both periods, calls per request, and the share of the
    request's added time that the span's added time accounts for."""
    root_rise, calls_base = _root_rise(spans, inputs)
    rows = []
    for name, group in spans[~spans["is_root"]].groupby("name"):
        base = group[group["period"] == "baseline"]
        win = group[group["period"] == "window"]
        if base.empty or win.empty:
            continue
        b, w = base.iloc[0], win.iloc[0]
        if b["count"] < MIN_SPANS or w["count"] < MIN_SPANS:
            continue
        delta = float(w["mean_ms"] - b["mean_ms"])
        calls = float(w["count"]) / calls_base if calls_base > 0 else 1.0
        rows.append(_span_row(str(name), b, w, delta, calls, root_rise))
    # Typed even without rows: an empty object column would select columns, not rows.
    return pd.DataFrame(rows, columns=_SPAN_COLUMNS).astype({"is_dependency": bool})


_SPAN_COLUMNS = [
    "name",
    "is_dependency",
    "baseline_mean_ms",
    "window_mean_ms",
    "baseline_p95_ms",
    "window_p95_ms",
    "ratio",
    "delta_ms",
    "calls_per_request",
    "share",
]


def _span_row(
    name: str, b: pd.Series, w: pd.Series, delta: float, calls: float, root_rise: float
) -> dict[str, Any]:
    share = delta * calls / root_rise if root_rise > 0 else math.nan
    return {
        "name": name,
        "is_dependency": bool(w["is_dependency"]),
        "baseline_mean_ms": float(b["mean_ms"]),
        "window_mean_ms": float(w["mean_ms"]),
        "baseline_p95_ms": float(b["p95_ms"]),
        "window_p95_ms": float(w["p95_ms"]),
        "ratio": ratio(float(w["mean_ms"]), float(b["mean_ms"])),
        "delta_ms": delta,
        "calls_per_request": calls,
        "share": 0.0 if math.isnan(share) else max(share, 0.0),
    }


def _root_rise(spans: pd.DataFrame, inputs: DiagnosisInputs) -> tuple[float, float]:
    """The added mean time per request (root spans if traced, else the records), and the
    number of traced requests in the window (to turn span counts into calls per request)."""
    roots = spans[spans["is_root"]]
    base = roots[roots["period"] == "baseline"]
    win = roots[roots["period"] == "window"]
    if not base.empty and not win.empty:
        b = np.average(base["mean_ms"], weights=base["count"])
        w = np.average(win["mean_ms"], weights=win["count"])
        return float(w - b), float(win["count"].sum())
    overall = inputs.overall
    traces = float(spans.loc[spans["period"] == "window", "num_traces"].max())
    return overall.window.mean_ms - overall.baseline.mean_ms, traces
