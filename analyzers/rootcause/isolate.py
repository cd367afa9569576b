"""Step 1 of the checklist, isolate: how big the change is, where it is concentrated, what
changed just before it, and whether traffic surged.

Concentration is measured by contribution: the share of the window's rise in the percentile
that disappears when one slice (a version, a host) is left out of the window. A slice that
carries the whole regression has a contribution near 1; a fleet-wide change gives every slice
a contribution near 0.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pandas as pd

from analyzers.rootcause.scoring import (
    MIN_REQUESTS,
    finite,
    fmt_ms,
    fmt_pct,
    fmt_ratio,
    json_rows,
    quantile_interval,
    quantile_rose,
    ramp,
    ratio,
    two_proportion_z,
)
from analyzers.rootcause.types import (
    Cause,
    CheckResult,
    Comparison,
    DiagnosisInputs,
    SliceStats,
    Status,
    Symptom,
)

VERSION_DIM = "model_version"
#: Tag keys whose values are machines: a slow one is a degraded host.
HOST_DIMS = frozenset({"host", "hostname", "node", "instance", "pod"})
#: A version with less than this share of the baseline's traffic is new in the window ...
NEW_VERSION_SHARE = 0.05
#: ... and one whose share grew by this much is rolling out.
ROLLOUT_SHARE_GAIN = 0.2
#: A new version serving at least this share of traffic replaced the previous one; below, it
#: is a canary (or a partial rollout) that can be taken out of rotation.
FULL_ROLLOUT_SHARE = 0.9
#: Traffic up by this factor (requests per minute) is a surge.
SURGE_RATIO = 1.4
#: Error rate at least doubled, up by a point, with z >= 3, is an error spike.
ERROR_RATIO = 2.0
ERROR_MIN_DELTA = 0.01
ERROR_MIN_Z = 3.0
CHANGE_KINDS = ("deploy", "canary", "rollback", "config", "scale")
#: An event counts as "just before" the onset within this many minutes.
EVENT_HORIZON_MINUTES = 120.0
#: Score of a configuration change just before the onset. Unlike a deploy, no version slice
#: can confirm it, so the timing is all the evidence there is; it ranks above weak, diffuse
#: findings and below anything that isolates the regression (a version, a host, a span).
CONFIG_SCORE = 0.6


def describe_symptom(inputs: DiagnosisInputs) -> Symptom:
    """The change in latency and errors from the baseline to the window: a percentile
    regressed when it rose materially and beyond sampling noise (`quantile_rose`), for the
    whole model or for one of its versions or hosts (`slices_regressed`): one slow host of
    eight, or a slow canary, may not move the model's p95 by much, yet it is a regression."""
    base, win = inputs.overall.baseline, inputs.overall.window
    enough = base.num_requests >= MIN_REQUESTS and win.num_requests >= MIN_REQUESTS
    p95 = (base.quantile(0.95), win.quantile(0.95))
    p99 = (base.quantile(0.99), win.quantile(0.99))
    p95_rose = enough and quantile_rose(win.histogram, base.histogram, 0.95)
    latency_regressed = (
        p95_rose
        or (enough and quantile_rose(win.histogram, base.histogram, 0.99))
        or (enough and bool(slices_regressed(inputs)))
    )
    errors_regressed = enough and _errors_rose(base, win)
    if errors_regressed and not latency_regressed:
        metric, values = "error_rate", (base.error_rate, win.error_rate)
    elif latency_regressed and not p95_rose:
        metric, values = "p99_latency_ms", p99
    else:
        metric, values = "p95_latency_ms", p95
    change = ratio(values[1], values[0]) - 1 if values[0] > 0 else math.nan
    return Symptom(
        metric=metric,
        baseline=finite(values[0]),
        current=finite(values[1]),
        change=finite(change),
        is_regression=latency_regressed or errors_regressed,
        latency_regressed=latency_regressed,
        errors_regressed=errors_regressed,
    )


def slices_regressed(inputs: DiagnosisInputs, q: float = 0.95) -> list[tuple[str, str]]:
    """(dimension, value) of the versions and hosts whose q-quantile regressed: above the
    rest of the window and above their own baseline (a new version has none), both
    materially and beyond noise, on at least `NEW_VERSION_SHARE` of the window's traffic."""
    found = []
    for dim, slices in inputs.slices.items():
        if dim != VERSION_DIM and dim not in HOST_DIMS:
            continue
        total = sum(c.window.num_requests for c in slices.values())
        for value, comparison in slices.items():
            window = comparison.window
            if window.num_requests < max(MIN_REQUESTS, NEW_VERSION_SHARE * total):
                continue
            rest = _merge(c.window for v, c in slices.items() if v != value)
            if rest.num_requests < MIN_REQUESTS:
                continue
            own = comparison.baseline
            above_own = own.num_requests < MIN_REQUESTS or quantile_rose(
                window.histogram, own.histogram, q
            )
            if above_own and quantile_rose(window.histogram, rest.histogram, q):
                found.append((dim, value))
    return found


def _errors_rose(base: SliceStats, win: SliceStats) -> bool:
    if win.error_rate < max(ERROR_RATIO * base.error_rate, base.error_rate + ERROR_MIN_DELTA):
        return False
    z = two_proportion_z(base.num_errors, base.num_requests, win.num_errors, win.num_requests)
    return z >= ERROR_MIN_Z


def symptom_quantile(symptom: Symptom) -> float:
    return 0.99 if symptom.metric == "p99_latency_ms" else 0.95


def check_symptom(inputs: DiagnosisInputs, symptom: Symptom) -> CheckResult:
    """Quantify the symptom: percentiles, error rate and traffic, baseline against window."""
    base, win = inputs.overall.baseline, inputs.overall.window
    evidence: dict[str, Any] = {
        "baseline": _period_stats(base, inputs.baseline_minutes),
        "window": _period_stats(win, inputs.window_minutes),
    }
    if inputs.compared_from is not None:
        evidence["compared_from"] = inputs.compared_from.isoformat()
    if inputs.compared_until is not None:
        evidence["compared_until"] = inputs.compared_until.isoformat()
    if win.num_requests < MIN_REQUESTS or base.num_requests < MIN_REQUESTS:
        return CheckResult(
            "isolate",
            "symptom",
            "inconclusive",
            f"too little traffic to compare ({base.num_requests} requests in the baseline, "
            f"{win.num_requests} in the window; at least {MIN_REQUESTS} each are needed)",
            evidence,
        )
    parts = [
        f"p95 {fmt_ms(base.quantile(0.95))} -> {fmt_ms(win.quantile(0.95))}",
        f"p99 {fmt_ms(base.quantile(0.99))} -> {fmt_ms(win.quantile(0.99))}",
        f"errors {fmt_pct(base.error_rate)} -> {fmt_pct(win.error_rate)}",
    ]
    if inputs.compared_from is not None or inputs.compared_until is not None:
        start = inputs.compared_from or inputs.window[0]
        end = inputs.compared_until or inputs.window[1]
        parts.append(f"compared over {start:%H:%M}-{end:%H:%M}, when latency was up")
    regressed = slices_regressed(inputs) if symptom.latency_regressed else []
    if regressed:
        evidence["regressed_slices"] = [{dim: value} for dim, value in regressed]
        parts.append("slower: " + ", ".join(f"{dim} {value}" for dim, value in regressed))
    if symptom.is_regression:
        return CheckResult(
            "isolate", "symptom", "fail", "Regression: " + ", ".join(parts), evidence
        )
    return CheckResult(
        "isolate", "symptom", "pass", "No regression beyond noise: " + ", ".join(parts), evidence
    )


def _period_stats(stats: SliceStats, minutes: float) -> dict[str, Any]:
    return {
        "num_requests": stats.num_requests,
        "requests_per_minute": finite(stats.num_requests / minutes),
        "error_rate": finite(stats.error_rate),
        "mean_ms": finite(stats.mean_ms),
        "p50_ms": finite(stats.quantile(0.5)),
        "p95_ms": finite(stats.quantile(0.95)),
        "p99_ms": finite(stats.quantile(0.99)),
        "mean_input_size": finite(stats.mean_input_size),
    }


def slice_table(inputs: DiagnosisInputs, dim: str, q: float) -> pd.DataFrame:
    """Per value of `dim`: traffic shares, the percentile in both periods, against the rest of
    the window, and the value's contribution to the rise of the percentile.

    Shares, rise and contribution are within the dimension's own population (the merge of
    its slices): tag slices leave new versions and untagged records out, and a slice's part
    in the rise is measured against the requests it was compared with.
    """
    slices = inputs.slices.get(dim, {})
    population = Comparison(
        _merge(c.baseline for c in slices.values()), _merge(c.window for c in slices.values())
    )
    rise = population.window.quantile(q) - population.baseline.quantile(q)
    rows = []
    for value, comparison in slices.items():
        rest = _merge(c.window for v, c in slices.items() if v != value)
        rows.append(_slice_row(value, comparison, rest, population, q, rise))
    return pd.DataFrame(rows, columns=_SLICE_COLUMNS)


_SLICE_COLUMNS = [
    "value",
    "baseline_share",
    "window_share",
    "baseline_q",
    "window_q",
    "rest_q",
    "peer_ratio",
    "self_ratio",
    "contribution",
    "window_requests",
    "above_peers",
]


def _slice_row(
    value: str,
    comparison: Comparison,
    rest: SliceStats,
    overall: Comparison,
    q: float,
    rise: float,
) -> dict[str, Any]:
    win, base = comparison.window, comparison.baseline
    window_q = win.quantile(q) if win.num_requests >= MIN_REQUESTS else math.nan
    baseline_q = base.quantile(q) if base.num_requests >= MIN_REQUESTS else math.nan
    rest_q = rest.quantile(q) if rest.num_requests >= MIN_REQUESTS else math.nan
    if rise > 0 and not math.isnan(rest_q) and not math.isnan(window_q):
        contribution = (overall.window.quantile(q) - rest_q) / rise
    elif rise > 0 and rest.num_requests == 0 and win.num_requests >= MIN_REQUESTS:
        contribution = 1.0  # the slice is the whole window
    else:
        contribution = 0.0
    return {
        "value": value,
        "baseline_share": base.num_requests / max(overall.baseline.num_requests, 1),
        "window_share": win.num_requests / max(overall.window.num_requests, 1),
        "baseline_q": baseline_q,
        "window_q": window_q,
        "rest_q": rest_q,
        "peer_ratio": ratio(window_q, rest_q),
        "self_ratio": ratio(window_q, baseline_q),
        "contribution": min(max(contribution, 0.0), 1.0),
        "window_requests": win.num_requests,
        "above_peers": _above(win, rest, q),
    }


def _above(stats: SliceStats, reference: SliceStats, q: float) -> bool:
    """Whether the q-quantile of `stats` is above that of `reference` beyond sampling noise
    (their confidence intervals do not overlap)."""
    if stats.num_requests < MIN_REQUESTS or reference.num_requests < MIN_REQUESTS:
        return False
    low = quantile_interval(stats.histogram, q)[0]
    return bool(low > quantile_interval(reference.histogram, q)[1])


def _merge(stats: Any) -> SliceStats:
    merged = SliceStats()
    for item in stats:
        merged = merged.merge(item)
    return merged


def new_versions(inputs: DiagnosisInputs) -> list[str]:
    """Versions new in the window (almost no baseline traffic) or rolling out (their share of
    traffic grew by `ROLLOUT_SHARE_GAIN` or more), busiest first. A version's share in the
    window is the larger of its share of the whole window and its share at the window's end,
    so a canary that started late in the window still counts."""
    total_base = max(inputs.overall.baseline.num_requests, 1)
    total_win = max(inputs.overall.window.num_requests, 1)
    found = []
    for version, c in inputs.slices.get(VERSION_DIM, {}).items():
        base_share = c.baseline.num_requests / total_base
        win_share = max(
            c.window.num_requests / total_win, inputs.recent_version_shares.get(version, 0.0)
        )
        rising = base_share < NEW_VERSION_SHARE or win_share - base_share >= ROLLOUT_SHARE_GAIN
        if win_share >= NEW_VERSION_SHARE and rising and c.window.num_requests >= MIN_REQUESTS:
            found.append((c.window.num_requests, version))
    return [v for _, v in sorted(found, reverse=True)]


def is_partial_rollout(inputs: DiagnosisInputs, version: str, window_share: float) -> bool:
    """Whether `version` serves beside another version (a canary or a partial rollout) rather
    than replacing it: by its share of traffic at the window's end where known (a rollout that
    started inside the window has a small share of the whole window but all of its end)."""
    share = inputs.recent_version_shares.get(version)
    if share is None:
        return window_share < FULL_ROLLOUT_SHARE
    return share < FULL_ROLLOUT_SHARE


def previous_version(inputs: DiagnosisInputs, exclude: str) -> str | None:
    """The version that served most of the baseline, other than `exclude`."""
    candidates = [
        (c.baseline.num_requests, v)
        for v, c in inputs.slices.get(VERSION_DIM, {}).items()
        if v != exclude and c.baseline.num_requests > 0
    ]
    return max(candidates)[1] if candidates else None


def check_versions(inputs: DiagnosisInputs, symptom: Symptom) -> CheckResult:
    """Is the regression carried by one version (a canary or a fresh rollout)?"""
    if VERSION_DIM not in inputs.slices:
        return CheckResult("isolate", "versions", "skipped", "no per-version data")
    q = symptom_quantile(symptom)
    table = slice_table(inputs, VERSION_DIM, q)
    evidence = {"quantile": q, "slices": json_rows(table)}
    if not symptom.latency_regressed:
        return CheckResult(
            "isolate",
            "versions",
            "pass",
            "latency did not regress; versions not compared",
            evidence,
        )
    causes = []
    for version in new_versions(inputs):
        row = table[table["value"] == version].iloc[0]
        cause = _version_cause(inputs, row, q)
        if cause is not None:
            causes.append(cause)
    if not causes:
        summary = "the regression is not concentrated in a new version"
        return CheckResult("isolate", "versions", "pass", summary, evidence)
    return CheckResult("isolate", "versions", "fail", causes[0].summary, evidence, tuple(causes))


def _version_cause(inputs: DiagnosisInputs, row: pd.Series, q: float) -> Cause | None:
    version = str(row["value"])
    previous = previous_version(inputs, version)
    reference = _reference_stats(inputs, version, previous)
    window = inputs.slices[VERSION_DIM][version].window
    slowdown = ratio(row["window_q"], reference.quantile(q))
    strength = ramp(slowdown, 1.1, 1.6)
    if strength <= 0 or not _above(window, reference, q):
        return None
    canary = is_partial_rollout(inputs, version, float(row["window_share"]))
    score = strength * (0.4 + 0.6 * float(row["contribution"]))
    label = "canary" if canary else "rollout"
    summary = (
        f"{label} of version {version} ({fmt_pct(row['window_share'])} of traffic) is slower: "
        f"p{round(q * 100)} {fmt_ms(row['window_q'])} against {fmt_ms(reference.quantile(q))} "
        f"({fmt_ratio(slowdown)}), {fmt_pct(row['contribution'])} of the rise"
    )
    target = previous or "the previous version"
    action = (
        f"Shift canary traffic off {version} back to {target}"
        if canary
        else f"Roll back {inputs.model} from {version} to {target}"
    )
    evidence = {
        "slowdown": finite(slowdown),
        "contribution": finite(float(row["contribution"])),
        "window_share": finite(float(row["window_share"])),
        "share_at_window_end": finite(inputs.recent_version_shares.get(version, math.nan)),
        "previous_version": previous,
    }
    return Cause("deploy", score, {"model_version": version}, summary, action, evidence)


def _reference_stats(inputs: DiagnosisInputs, version: str, previous: str | None) -> SliceStats:
    """What a new version is compared with: the other versions serving beside it in the
    window (a canary), else what served before it (a rollout)."""
    slices = inputs.slices.get(VERSION_DIM, {})
    beside = _merge(c.window for v, c in slices.items() if v != version)
    if beside.num_requests >= MIN_REQUESTS:
        return beside
    stats = slices.get(previous or "")
    if stats is not None and stats.baseline.num_requests >= MIN_REQUESTS:
        return stats.baseline
    return inputs.overall.baseline


def check_hosts(inputs: DiagnosisInputs, symptom: Symptom) -> CheckResult:
    """Is the regression carried by one host (or another machine-like tag value)?"""
    dims = [dim for dim in inputs.slices if dim in HOST_DIMS]
    if not dims:
        return CheckResult("isolate", "hosts", "skipped", "no per-host data")
    q = symptom_quantile(symptom)
    evidence: dict[str, Any] = {"quantile": q}
    causes = []
    for dim in dims:
        table = slice_table(inputs, dim, q)
        evidence[dim] = json_rows(table)
        if symptom.latency_regressed:
            causes.extend(_host_causes(dim, table, q))
    if not symptom.latency_regressed:
        return CheckResult("isolate", "hosts", "pass", "latency did not regress", evidence)
    if not causes:
        return CheckResult(
            "isolate", "hosts", "pass", "no single host carries the regression", evidence
        )
    causes.sort(key=lambda c: -c.score)
    return CheckResult("isolate", "hosts", "fail", causes[0].summary, evidence, tuple(causes))


def _host_causes(dim: str, table: pd.DataFrame, q: float) -> list[Cause]:
    causes = []
    for _, row in table.iterrows():
        strength = ramp(row["peer_ratio"], 1.2, 2.0)
        if strength <= 0 or row["contribution"] < 0.3 or not row["above_peers"]:
            continue
        host = str(row["value"])
        summary = (
            f"{dim} {host} is slower than the rest: p{round(q * 100)} "
            f"{fmt_ms(row['window_q'])} against {fmt_ms(row['rest_q'])} "
            f"({fmt_ratio(row['peer_ratio'])}), {fmt_pct(row['contribution'])} of the rise"
        )
        causes.append(
            Cause(
                "host_degradation",
                strength * (0.4 + 0.6 * float(row["contribution"])),
                {dim: host},
                summary,
                f"Drain {host} and look at its hardware and neighbours",
                {
                    "peer_ratio": finite(row["peer_ratio"]),
                    "contribution": finite(row["contribution"]),
                },
            )
        )
    return causes


def check_segments(inputs: DiagnosisInputs, symptom: Symptom) -> CheckResult:
    """Where other tag values (region, segment, ...) carry the regression: evidence only."""
    dims = [dim for dim in inputs.slices if dim not in HOST_DIMS and dim != VERSION_DIM]
    if not dims:
        return CheckResult("isolate", "segments", "skipped", "no other tag dimensions rolled up")
    q = symptom_quantile(symptom)
    evidence: dict[str, Any] = {"quantile": q}
    concentrated: list[str] = []
    for dim in dims:
        table = slice_table(inputs, dim, q)
        evidence[dim] = json_rows(table)
        hot = table[
            (table["contribution"] >= 0.5)
            & (table["peer_ratio"] >= 1.2)
            & table["above_peers"].astype(bool)
        ]
        concentrated.extend(f"{dim}={value}" for value in hot["value"])
    if symptom.latency_regressed and concentrated:
        summary = "the regression is concentrated in " + ", ".join(concentrated)
        return CheckResult("isolate", "segments", "fail", summary, evidence)
    return CheckResult("isolate", "segments", "pass", "no segment stands out", evidence)


def check_changes(inputs: DiagnosisInputs, symptom: Symptom) -> CheckResult:
    """The deploy, canary, config or scale event nearest the onset: from the baseline's start
    to a few minutes after the onset (minute-level onsets are approximate), or to the window's
    end when no onset was found. A rollback after the onset is a response, not a cause."""
    events = inputs.events
    if events.empty:
        return CheckResult("isolate", "changes", "pass", "no deploy or config change recorded")
    onset = inputs.onset_at or inputs.window[0]
    changes = events[events["kind"].isin(CHANGE_KINDS)].copy()
    at = pd.to_datetime(changes["timestamp"], utc=True)
    changes["minutes_before_onset"] = (onset - at).dt.total_seconds() / 60.0
    latest = onset + dt.timedelta(minutes=10) if inputs.onset_at else inputs.window[1]
    response = (changes["kind"] == "rollback") & (changes["minutes_before_onset"] < 0)
    before = changes[(at >= inputs.baseline[0]) & (at <= latest) & ~response]
    evidence: dict[str, Any] = {"onset_at": onset.isoformat(), "events": json_rows(changes)}
    if before.empty:
        return CheckResult("isolate", "changes", "pass", "no change before the onset", evidence)
    nearest = before.loc[before["minutes_before_onset"].abs().idxmin()]
    evidence["nearest"] = json_rows(pd.DataFrame([nearest]))[0]
    summary = _event_sentence(nearest)
    causes = _change_causes(inputs, symptom, nearest) if symptom.latency_regressed else []
    status: Status = "fail" if symptom.is_regression else "pass"
    return CheckResult("isolate", "changes", status, summary, evidence, tuple(causes))


def _event_sentence(event: pd.Series) -> str:
    minutes = float(event["minutes_before_onset"])
    when = f"{abs(minutes):.0f} min {'before' if minutes >= 0 else 'after'} the onset"
    version = event.get("model_version")
    what = f"{event['kind']}" + (f" of {version}" if isinstance(version, str) else "")
    description = event.get("description")
    detail = f" ({description})" if isinstance(description, str) and description else ""
    return f"nearest change: {what}{detail}, {when}"


def _change_causes(inputs: DiagnosisInputs, symptom: Symptom, event: pd.Series) -> list[Cause]:
    minutes = float(event["minutes_before_onset"])
    if minutes > EVENT_HORIZON_MINUTES:
        return []
    closeness = 1.0 - ramp(minutes, 15.0, EVENT_HORIZON_MINUTES)
    version = event.get("model_version")
    if event["kind"] in ("deploy", "canary") and isinstance(version, str):
        previous = previous_version(inputs, version) or "the previous version"
        return [
            Cause(
                "deploy",
                0.3 * closeness,
                {"model_version": version},
                _event_sentence(event),
                f"Roll back {inputs.model} from {version} to {previous}",
                {"minutes_before_onset": round(minutes, 1)},
            )
        ]
    if event["kind"] == "config":
        return [
            Cause(
                "deploy",
                CONFIG_SCORE * closeness,
                {"change": "config"},
                _event_sentence(event),
                "Revert the configuration change",
                {"minutes_before_onset": round(minutes, 1)},
            )
        ]
    return []


def check_traffic(inputs: DiagnosisInputs, symptom: Symptom) -> CheckResult:
    """Did request volume surge, and does latency follow it minute by minute?"""
    base_rate = inputs.overall.baseline.num_requests / inputs.baseline_minutes
    win_rate = inputs.overall.window.num_requests / inputs.window_minutes
    surge = ratio(win_rate, base_rate)
    correlation = _traffic_latency_correlation(inputs.minute_series)
    evidence = {
        "baseline_per_minute": finite(base_rate),
        "window_per_minute": finite(win_rate),
        "ratio": finite(surge),
        "traffic_latency_correlation": finite(correlation),
    }
    summary = f"requests per minute {base_rate:,.1f} -> {win_rate:,.1f} ({fmt_ratio(surge)})"
    if math.isnan(surge) or surge < SURGE_RATIO:
        return CheckResult("isolate", "traffic", "pass", summary, evidence)
    if not symptom.latency_regressed:
        return CheckResult(
            "isolate", "traffic", "pass", summary + "; latency held up under it", evidence
        )
    follows = 0.5 if math.isnan(correlation) else max(correlation, 0.0)
    score = ramp(surge, 1.3, 2.0) * (0.4 + 0.6 * follows)
    cause = Cause(
        "traffic_surge",
        score,
        {"model": inputs.model},
        f"traffic surged: {summary}",
        "Scale out (more replicas or GPUs) or rate-limit the surge",
        evidence,
    )
    return CheckResult("isolate", "traffic", "fail", cause.summary, evidence, (cause,))


def _traffic_latency_correlation(series: pd.DataFrame) -> float:
    """Spearman correlation of per-minute requests and p95 over both periods."""
    if series.empty or len(series) < 10:
        return math.nan
    frame = series[["num_requests", "p95"]].dropna()
    if len(frame) < 10 or frame["num_requests"].nunique() < 3 or frame["p95"].nunique() < 3:
        return math.nan
    return float(frame["num_requests"].rank().corr(frame["p95"].rank()))


def check_errors(inputs: DiagnosisInputs, symptom: Symptom) -> CheckResult:
    """Did the error rate jump, and in which version or host?"""
    base, win = inputs.overall.baseline, inputs.overall.window
    z = two_proportion_z(base.num_errors, base.num_requests, win.num_errors, win.num_requests)
    evidence: dict[str, Any] = {
        "baseline_error_rate": finite(base.error_rate),
        "window_error_rate": finite(win.error_rate),
        "z": finite(z),
    }
    summary = f"error rate {fmt_pct(base.error_rate)} -> {fmt_pct(win.error_rate)}"
    if not symptom.errors_regressed:
        return CheckResult("isolate", "errors", "pass", summary, evidence)
    scope, share = _error_concentration(inputs)
    evidence["concentration"] = {"scope": scope, "share_of_extra_errors": finite(share)}
    where = ", ".join(f"{k} {v}" for k, v in scope.items()) or "every slice"
    jump = ratio(win.error_rate, max(base.error_rate, 1e-4))
    cause = Cause(
        "error_spike",
        0.5 + 0.5 * ramp(jump, 2.0, 10.0),
        scope or {"model": inputs.model},
        f"errors spiked: {summary}, in {where}",
        _error_action(inputs, scope),
        evidence,
    )
    return CheckResult("isolate", "errors", "fail", cause.summary, evidence, (cause,))


def _error_concentration(inputs: DiagnosisInputs) -> tuple[dict[str, str], float]:
    """The slice holding most of the extra errors (at least 60 %), if its error rate is
    significantly above the rest's (z >= 3): with few errors, 8 of 13 on one of two hosts is
    chance, not a bad host."""
    base, win = inputs.overall.baseline, inputs.overall.window
    extra_total = win.num_errors - base.error_rate * win.num_requests
    best: tuple[float, dict[str, str]] = (0.0, {})
    for dim, slices in inputs.slices.items():
        total_errors = sum(c.window.num_errors for c in slices.values())
        total_requests = sum(c.window.num_requests for c in slices.values())
        for value, comparison in slices.items():
            w = comparison.window
            extra = w.num_errors - base.error_rate * w.num_requests
            share = extra / extra_total if extra_total > 0 else 0.0
            z = two_proportion_z(
                total_errors - w.num_errors,
                total_requests - w.num_requests,
                w.num_errors,
                w.num_requests,
            )
            if share >= 0.6 and z >= ERROR_MIN_Z and share > best[0]:
                best = (share, {dim: value})
    return best[1], best[0]


def _error_action(inputs: DiagnosisInputs, scope: dict[str, str]) -> str:
    version = scope.get(VERSION_DIM)
    if version is not None:
        previous = previous_version(inputs, version) or "the previous version"
        return f"Roll back {inputs.model} from {version} to {previous} and read its error logs"
    host = next((v for k, v in scope.items() if k in HOST_DIMS), None)
    if host is not None:
        return f"Drain {host} and read its error logs"
    return "Read the error messages of the window (GET /api/v1/records?status=error)"
