"""Step 3 of the checklist, infra: GPU saturation (compute or memory), and hosts whose
hardware degraded (thermal or power throttling, falling clocks, CPU or memory exhaustion),
judged against the baseline and against the rest of the fleet.

`metrics` holds per (host, resource, name, period) the mean, max and count of the samples,
named as in DESIGN 3.1 (`gpu_utilization_pct`, `gpu_memory_used_mb`, `gpu_memory_total_mb`,
`gpu_temperature_c`, `gpu_sm_clock_mhz`, `gpu_throttled`, `cpu_utilization_pct`, ...).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from analyzers.rootcause.isolate import HOST_DIMS, slice_table, symptom_quantile
from analyzers.rootcause.scoring import finite, json_rows, ramp, ratio
from analyzers.rootcause.types import Cause, CheckResult, DiagnosisInputs, Symptom

GPU_SATURATED_PCT = 90.0
GPU_MEMORY_FULL = 0.95
HOT_C = 85.0
CPU_SATURATED_PCT = 90.0
CLOCK_DROP = 0.85
THROTTLED_SHARE = 0.2
#: GPUs saturated on at least this share of the hosts (two or more) is a fleet-wide cause.
FLEET_SHARE = 0.5


def host_metrics(metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per host with each signal's baseline and window value (NaN where missing);
    per-GPU values are reduced to the host's worst GPU."""
    if metrics.empty:
        return pd.DataFrame()
    wide = metrics.pivot_table(
        index=["host", "resource", "period"], columns="name", values="mean", aggfunc="mean"
    ).reset_index()
    if {"gpu_memory_used_mb", "gpu_memory_total_mb"} <= set(wide.columns):
        wide["gpu_memory_share"] = wide["gpu_memory_used_mb"] / wide["gpu_memory_total_mb"]
    worst = {
        "gpu_utilization_pct": "max",
        "gpu_memory_share": "max",
        "gpu_temperature_c": "max",
        "gpu_throttled": "max",
        "gpu_sm_clock_mhz": "min",
        "cpu_utilization_pct": "max",
        "memory_used_mb": "max",
        "queue_length": "max",
    }
    present = {k: v for k, v in worst.items() if k in wide.columns}
    if not present:
        return pd.DataFrame()
    per_host = wide.groupby(["host", "period"]).agg(present).reset_index()
    table = per_host.pivot(index="host", columns="period")
    table.columns = [f"{name}:{period}" for name, period in table.columns]
    return table.reset_index()


def _value(row: pd.Series, name: str, period: str) -> float:
    value = row.get(f"{name}:{period}")
    return math.nan if value is None or pd.isna(value) else float(value)


def _host_shares(inputs: DiagnosisInputs, symptom: Symptom) -> dict[str, float]:
    """Each host's contribution to the latency rise (0.5 for all when unknown)."""
    q = symptom_quantile(symptom)
    for dim in inputs.slices:
        if dim in HOST_DIMS:
            table = slice_table(inputs, dim, q)
            return dict(zip(table["value"].astype(str), table["contribution"], strict=True))
    return {}


def check_gpu_saturation(inputs: DiagnosisInputs, symptom: Symptom) -> CheckResult:
    """GPUs running at their limit (utilization or memory) in the window but not before."""
    table = host_metrics(inputs.metrics)
    if table.empty or not any(c.startswith("gpu_") for c in table.columns):
        return CheckResult("infra", "gpu_saturation", "skipped", "no GPU metrics for the window")
    shares = _host_shares(inputs, symptom)
    findings = []
    for _, row in table.iterrows():
        finding = _saturation(row)
        if finding is not None:
            findings.append(finding)
    evidence = {"hosts": json_rows(table)}
    if not findings:
        return CheckResult("infra", "gpu_saturation", "pass", "GPUs have headroom", evidence)
    summary = "; ".join(f["summary"] for f in findings)
    if not symptom.latency_regressed:
        return CheckResult("infra", "gpu_saturation", "fail", summary, evidence)
    if len(findings) >= 2 and len(findings) >= FLEET_SHARE * len(table):
        causes: tuple[Cause, ...] = (_fleet_saturation_cause(inputs, findings, len(table)),)
    else:
        causes = tuple(_saturation_cause(f, shares, len(table)) for f in findings)
    return CheckResult("infra", "gpu_saturation", "fail", summary, evidence, causes)


def _saturation(row: pd.Series) -> dict[str, Any] | None:
    host = str(row["host"])
    util_b = _value(row, "gpu_utilization_pct", "baseline")
    util_w = _value(row, "gpu_utilization_pct", "window")
    mem_b = _value(row, "gpu_memory_share", "baseline")
    mem_w = _value(row, "gpu_memory_share", "window")
    util_new = util_w >= GPU_SATURATED_PCT - 2 and not util_b >= util_w - 5
    memory_new = mem_w >= GPU_MEMORY_FULL and not mem_b >= GPU_MEMORY_FULL
    if not util_new and not memory_new:
        return None
    strength = max(
        ramp(util_w, GPU_SATURATED_PCT - 3, 99.0) if util_new else 0.0,
        ramp(mem_w, 0.93, 0.99) if memory_new else 0.0,
    )
    parts = []
    if util_new:
        parts.append(f"utilization {util_b:.0f} % -> {util_w:.0f} %")
    if memory_new:
        parts.append(f"memory {100 * mem_b:.0f} % -> {100 * mem_w:.0f} % full")
    return {"host": host, "strength": strength, "summary": f"{host}: GPU " + ", ".join(parts)}


def _saturation_cause(finding: dict[str, Any], shares: dict[str, float], num_hosts: int) -> Cause:
    """GPUs saturated on a minority of hosts: a cause per host, weighed by the host's part in
    the latency rise (0.5 when records do not say which host served them)."""
    host = finding["host"]
    share = shares.get(host, 0.0) if shares else 0.5
    return Cause(
        "gpu_saturation",
        finding["strength"] * (0.6 + 0.4 * share),
        {"host": host},
        f"GPU saturated on {finding['summary']}",
        f"Drain {host} and find what occupies its GPUs (another process, a memory leak, "
        "oversized batches); then cap batch size or concurrency per GPU",
        {"latency_contribution": finite(share) if shares else None, "num_hosts": num_hosts},
    )


def _fleet_saturation_cause(
    inputs: DiagnosisInputs, findings: list[dict[str, Any]], num_hosts: int
) -> Cause:
    """GPUs saturated on most hosts: one cause for the fleet, not one per host."""
    hosts = [f["host"] for f in findings]
    return Cause(
        "gpu_saturation",
        sum(f["strength"] for f in findings) / len(findings),
        {"model": inputs.model},
        f"GPUs saturated on {len(hosts)} of {num_hosts} hosts: "
        + "; ".join(f["summary"] for f in findings[:3])
        + ("; ..." if len(findings) > 3 else ""),
        "Scale out (add GPU replicas) or reduce batch size and concurrency per GPU",
        {"hosts": hosts},
    )


def check_host_health(inputs: DiagnosisInputs, symptom: Symptom) -> CheckResult:
    """Hosts whose hardware degraded: throttling, heat, falling SM clocks, CPU exhaustion,
    against their own baseline or against the rest of the fleet in the window."""
    table = host_metrics(inputs.metrics)
    if table.empty:
        return CheckResult("infra", "host_health", "skipped", "no host metrics for the window")
    shares = _host_shares(inputs, symptom)
    problems = [p for p in (_host_problem(row, table) for _, row in table.iterrows()) if p]
    evidence = {"hosts": json_rows(table)}
    if not problems:
        return CheckResult("infra", "host_health", "pass", "no host degraded", evidence)
    summary = "; ".join(p["summary"] for p in problems)
    if not symptom.latency_regressed:
        return CheckResult("infra", "host_health", "fail", summary, evidence)
    causes = tuple(
        Cause(
            "host_degradation",
            (0.35 + 0.45 * p["strength"]) * (0.5 + 0.5 * shares.get(p["host"], 1.0)),
            {"host": p["host"]},
            f"host {p['summary']}",
            f"Drain {p['host']} and check its cooling, power and clocks",
            {"signals": p["signals"], "latency_contribution": finite(shares.get(p["host"], 1))},
        )
        for p in problems
    )
    return CheckResult("infra", "host_health", "fail", summary, evidence, causes)


def _host_problem(row: pd.Series, table: pd.DataFrame) -> dict[str, Any] | None:
    host = str(row["host"])
    others = table[table["host"] != row["host"]]
    signals: dict[str, float] = {}
    temp_b, temp_w = (
        _value(row, "gpu_temperature_c", "baseline"),
        _value(row, "gpu_temperature_c", "window"),
    )
    peers_temp = _peer_median(others, "gpu_temperature_c")
    if temp_w >= HOT_C and (temp_w - temp_b >= 8 or temp_w - peers_temp >= 10):
        signals["temperature"] = ramp(temp_w, HOT_C - 2, 95.0)
    throttled_b = _value(row, "gpu_throttled", "baseline")
    throttled_w = _value(row, "gpu_throttled", "window")
    if throttled_w >= THROTTLED_SHARE and not throttled_b >= THROTTLED_SHARE:
        signals["throttling"] = ramp(throttled_w, 0.1, 0.6)
    clock_w = _value(row, "gpu_sm_clock_mhz", "window")
    clock_ref = _value(row, "gpu_sm_clock_mhz", "baseline")
    if math.isnan(clock_ref):
        clock_ref = _peer_median(others, "gpu_sm_clock_mhz")
    clock_ratio = ratio(clock_w, clock_ref)
    if clock_ratio <= CLOCK_DROP:
        signals["sm_clock"] = ramp(1 - clock_ratio, 1 - CLOCK_DROP, 0.5)
    cpu_b, cpu_w = (
        _value(row, "cpu_utilization_pct", "baseline"),
        _value(row, "cpu_utilization_pct", "window"),
    )
    if cpu_w >= CPU_SATURATED_PCT and (cpu_w - cpu_b >= 15 or math.isnan(cpu_b)):
        signals["cpu"] = ramp(cpu_w, CPU_SATURATED_PCT - 3, 99.0)
    if not signals:
        return None
    words = {
        "temperature": f"GPU at {temp_w:.0f} C (was {temp_b:.0f} C)",
        "throttling": f"throttled {100 * throttled_w:.0f} % of the time",
        "sm_clock": f"SM clock {clock_w:.0f} MHz against {clock_ref:.0f} MHz",
        "cpu": f"CPU {cpu_w:.0f} % busy (was {cpu_b:.0f} %)",
    }
    summary = f"{host}: " + ", ".join(words[k] for k in signals)
    return {"host": host, "strength": max(signals.values()), "signals": signals, "summary": summary}


def _peer_median(others: pd.DataFrame, name: str) -> float:
    column = f"{name}:window"
    if others.empty or column not in others.columns:
        return math.nan
    value = others[column].median()
    return math.nan if pd.isna(value) else float(value)
