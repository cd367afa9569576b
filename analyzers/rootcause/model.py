"""Step 4 of the checklist, model: did the new version itself get slower (on comparable
inputs), which of its own spans grew (preprocess, forward, postprocess), and which profiler
operators account for the added time?
"""

from __future__ import annotations

import math

import pandas as pd

from analyzers.rootcause.data import span_changes
from analyzers.rootcause.isolate import (
    VERSION_DIM,
    new_versions,
    previous_version,
    symptom_quantile,
)
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
from analyzers.rootcause.types import Cause, CheckResult, DiagnosisInputs, SliceStats, Symptom

#: Operators adding less than this share of the base trace's time are noise.
OPERATOR_MIN_ADDED = 0.05
MAX_OPERATOR_CAUSES = 2


def version_pair(inputs: DiagnosisInputs) -> tuple[str, str] | None:
    """(previous, new) version: the busiest version new or rolling out in the window and the
    version that served most of the baseline."""
    for version in new_versions(inputs):
        previous = previous_version(inputs, version)
        if previous is not None:
            return previous, version
    return None


def check_version_latency(inputs: DiagnosisInputs, symptom: Symptom) -> CheckResult:
    """The new version against the previous one, per unit of input where sizes are known."""
    pair = version_pair(inputs)
    if pair is None:
        return CheckResult("model", "version_latency", "skipped", "no new version in the window")
    previous, new = pair
    slices = inputs.slices[VERSION_DIM]
    new_stats = slices[new].window
    old_stats = _previous_stats(slices[previous].baseline, slices[previous].window)
    q = symptom_quantile(symptom)
    if new_stats.num_requests < MIN_REQUESTS or old_stats.num_requests < MIN_REQUESTS:
        return CheckResult("model", "version_latency", "inconclusive", "too few requests")
    slowdown = ratio(new_stats.quantile(q), old_stats.quantile(q))
    per_input = ratio(
        new_stats.mean_ms / new_stats.mean_input_size, old_stats.mean_ms / old_stats.mean_input_size
    )
    comparable = (
        per_input if not math.isnan(per_input) else ratio(new_stats.mean_ms, old_stats.mean_ms)
    )
    evidence = {
        "previous_version": previous,
        "new_version": new,
        "quantile": q,
        "previous_q_ms": finite(old_stats.quantile(q)),
        "new_q_ms": finite(new_stats.quantile(q)),
        "ratio": finite(slowdown),
        "latency_per_input_ratio": finite(per_input),
    }
    summary = (
        f"{new} against {previous}: p{round(q * 100)} {fmt_ms(old_stats.quantile(q))} -> "
        f"{fmt_ms(new_stats.quantile(q))} ({fmt_ratio(slowdown)}), mean per unit of input "
        f"{fmt_ratio(per_input)}"
    )
    if not comparable >= 1.1:
        return CheckResult("model", "version_latency", "pass", summary, evidence)
    causes: tuple[Cause, ...] = ()
    if symptom.latency_regressed:
        causes = (
            Cause(
                "deploy",
                0.8 * ramp(comparable, 1.1, 1.6),
                {"model_version": new},
                f"version {new} is slower than {previous} on comparable inputs "
                f"({fmt_ratio(comparable)} mean latency per request of the same size)",
                f"Roll back {inputs.model} from {new} to {previous}",
                evidence,
            ),
        )
    return CheckResult("model", "version_latency", "fail", summary, evidence, causes)


def _previous_stats(baseline: SliceStats, window: SliceStats) -> SliceStats:
    """The previous version in the window when it still serves there (a canary), else in
    the baseline (a full rollout)."""
    return window if window.num_requests >= MIN_REQUESTS else baseline


def check_span_breakdown(inputs: DiagnosisInputs, symptom: Symptom) -> CheckResult:
    """Which of the model's own spans (not dependencies) grew: preprocess, forward, ..."""
    spans = inputs.spans
    if spans.empty or not (~spans["is_root"] & ~spans["is_dependency"]).any():
        return CheckResult("model", "span_breakdown", "skipped", "no model spans in the traces")
    table = span_changes(spans, inputs)
    own = table.loc[~table["is_dependency"].astype(bool)].sort_values("share", ascending=False)
    evidence = {"spans": json_rows(own)}
    grown = own[(own["ratio"] >= 1.2) & (own["delta_ms"] >= 0.5)]
    if grown.empty:
        return CheckResult("model", "span_breakdown", "pass", "model spans unchanged", evidence)
    top = grown.iloc[0]
    summary = (
        f"{top['name']} grew {fmt_ms(top['baseline_mean_ms'])} -> {fmt_ms(top['window_mean_ms'])}"
        f" ({fmt_pct(top['share'])} of the added time)"
    )
    return CheckResult("model", "span_breakdown", "fail", summary, evidence)


def check_operators(inputs: DiagnosisInputs, symptom: Symptom) -> CheckResult:
    """From profiler traces of the previous and the new version: the operators that account
    for the added time, new operators included."""
    diff = inputs.operator_diff
    if diff.empty or inputs.operator_versions is None:
        return CheckResult(
            "model", "operators", "skipped", "no profiler traces of two versions to compare"
        )
    base_version, target_version = inputs.operator_versions
    base_total = float(diff["base_us"].sum())
    added = diff[diff["delta_us"] > 0].sort_values("delta_us", ascending=False)
    total_added = float(added["delta_us"].sum())
    evidence = {
        "base_version": base_version,
        "target_version": target_version,
        "base_total_us": finite(base_total),
        "added_us": finite(total_added),
        "operators": json_rows(added.head(10)),
    }
    if added.empty or base_total <= 0 or total_added < OPERATOR_MIN_ADDED * base_total:
        summary = f"{target_version} spends no more operator time than {base_version}"
        return CheckResult("model", "operators", "pass", summary, evidence)
    summary = _operators_sentence(added, total_added, base_total, base_version, target_version)
    causes: tuple[Cause, ...] = ()
    if symptom.latency_regressed:
        slow = _version_is_slow(inputs, target_version, symptom)
        causes = tuple(
            _operator_cause(row, total_added, base_total, base_version, target_version, slow)
            for _, row in added.head(MAX_OPERATOR_CAUSES).iterrows()
            if row["delta_us"] >= 0.25 * total_added
        )
    return CheckResult("model", "operators", "fail", summary, evidence, causes)


def _operators_sentence(
    added: pd.DataFrame, total_added: float, base_total: float, base: str, target: str
) -> str:
    top = added.iloc[0]
    new = " (new)" if bool(top.get("is_new", False)) else ""
    return (
        f"{target} adds {total_added / 1000:,.2f} ms per step over {base} "
        f"({fmt_pct(total_added / base_total)}); {top['name']}{new} accounts for "
        f"{fmt_pct(top['delta_us'] / total_added)} of it"
    )


def _version_is_slow(inputs: DiagnosisInputs, version: str, symptom: Symptom) -> bool:
    """Whether the traced version is slower than the rest in the window or the baseline."""
    slices = inputs.slices.get(VERSION_DIM, {})
    if version not in slices:
        return False
    q = symptom_quantile(symptom)
    mine = slices[version].window
    others = SliceStats()
    for name, comparison in slices.items():
        if name != version:
            others = others.merge(comparison.window)
    reference = others if others.num_requests >= MIN_REQUESTS else inputs.overall.baseline
    return ratio(mine.quantile(q), reference.quantile(q)) >= 1.1


def _operator_cause(
    row: pd.Series,
    total_added: float,
    base_total: float,
    base: str,
    target: str,
    version_is_slow: bool,
) -> Cause:
    share = float(row["delta_us"]) / total_added
    growth = ramp(total_added / base_total, OPERATOR_MIN_ADDED, 0.5)
    score = (0.45 + 0.45 * share * (0.5 + 0.5 * growth)) * (1.0 if version_is_slow else 0.5)
    name = str(row["name"])
    return Cause(
        "model_operator",
        score,
        {"operator": name, "model_version": target},
        f"in {target}, operator {name} ({row.get('category', 'op')}) adds "
        f"{float(row['delta_us']) / 1000:,.2f} ms per step over {base} "
        f"({fmt_pct(share)} of the added time)",
        f"Roll back to {base}, then fix the change to {name} in {target} (compare the "
        "profiler traces of both versions)",
        {"delta_us": finite(float(row["delta_us"])), "share": finite(share)},
    )
