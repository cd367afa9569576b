"""Synthetic diagnosis inputs with one known injected cause (or none, or two).

Requests are drawn per period (baseline, window) with a version, a host, a latency, an error
flag and an input size, then aggregated the way the pipeline aggregates rollups. Each
`inject_*` function changes the window only, the way that incident would.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analyzers.histograms import Histogram
from analyzers.rootcause import Comparison, DiagnosisInputs, SliceStats

T0 = dt.datetime(2026, 11, 16, 14, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
HOSTS = ("gpu-1", "gpu-2", "gpu-3", "gpu-4")
MODEL = "fraud-scorer"


@dataclass
class Period:
    """Requests of one period as columns."""

    version: np.ndarray
    host: np.ndarray
    latency_ms: np.ndarray
    is_error: np.ndarray
    input_size: np.ndarray
    minute: np.ndarray


@dataclass
class Scenario:
    baseline: Period
    window: Period
    rng: np.random.Generator
    events: list[dict[str, Any]] = field(default_factory=list)
    feature_drift: pd.DataFrame = field(default_factory=pd.DataFrame)
    null_rates: pd.DataFrame = field(default_factory=pd.DataFrame)
    spans: pd.DataFrame = field(default_factory=pd.DataFrame)
    metrics: pd.DataFrame = field(default_factory=pd.DataFrame)
    operator_diff: pd.DataFrame = field(default_factory=pd.DataFrame)
    operator_versions: tuple[str, str] | None = None
    onset_at: dt.datetime | None = None


def _period(rng: np.random.Generator, n: int, *, version: str = "v6") -> Period:
    input_size = rng.gamma(4.0, 50.0, n)
    latency = (10.0 + 0.1 * input_size) * rng.lognormal(0.0, 0.25, n)
    return Period(
        version=np.full(n, version, dtype=object),
        host=rng.choice(HOSTS, n),
        latency_ms=latency,
        is_error=rng.random(n) < 0.005,
        input_size=input_size,
        minute=rng.integers(0, 60, n),
    )


def healthy(*, seed: int = 0, requests_per_hour: int = 6000) -> Scenario:
    """An hour of baseline and an hour of window from the same distribution, with GPU and
    host metrics, feature drift results and spans that show nothing wrong."""
    rng = np.random.default_rng(seed)
    scenario = Scenario(_period(rng, requests_per_hour), _period(rng, requests_per_hour), rng)
    scenario.metrics = _metrics(rng)
    scenario.feature_drift = pd.DataFrame(
        {
            "feature": ["amount", "country", "num_tx"],
            "test": ["wasserstein", "jensenshannon", "wasserstein"],
            "statistic": [0.02, 0.01, 0.03],
            "p_value": [None, None, None],
            "threshold": [0.1, 0.1, 0.1],
            "drifted": [False, False, False],
        }
    )
    scenario.null_rates = pd.DataFrame(
        {"feature": ["amount", "country"], "baseline": [0.01, 0.0], "window": [0.012, 0.0]}
    )
    scenario.spans = _spans({"feature_store.lookup": (5.0, 5.0), "model.forward": (20.0, 20.0)})
    return scenario


def _metrics(rng: np.random.Generator, **overrides: dict[str, tuple[float, float]]) -> pd.DataFrame:
    """Per host and period the mean of each GPU/host signal; overrides: name -> {host:
    (baseline, window)}."""
    normal = {
        "gpu_utilization_pct": (55.0, 57.0),
        "gpu_memory_used_mb": (30_000.0, 30_500.0),
        "gpu_memory_total_mb": (81_559.0, 81_559.0),
        "gpu_temperature_c": (62.0, 63.0),
        "gpu_sm_clock_mhz": (1980.0, 1980.0),
        "gpu_throttled": (0.0, 0.0),
        "cpu_utilization_pct": (35.0, 36.0),
    }
    rows = []
    for host in HOSTS:
        for name, (base, win) in normal.items():
            values = overrides.get(name, {}).get(host, (base, win))  # type: ignore[call-overload]
            for period, value in zip(("baseline", "window"), values, strict=True):
                noise = 0.0 if name.endswith(("total_mb", "throttled")) else rng.normal(0, 0.5)
                rows.append(
                    {
                        "host": host,
                        "resource": "cpu" if name.startswith("cpu") else "gpu0",
                        "name": name,
                        "period": period,
                        "mean": value + noise,
                        "max": value + abs(noise) + 1,
                        "count": 360,
                    }
                )
    return pd.DataFrame(rows)


def _spans(durations: dict[str, tuple[float, float]], *, traces: int = 600) -> pd.DataFrame:
    """Span stats per name: (baseline mean, window mean) in ms; the root is their sum + 10."""
    rows = []
    for period, index in (("baseline", 0), ("window", 1)):
        total = 10.0
        for name, means in durations.items():
            total += means[index]
            rows.append(_span_row(name, period, means[index], traces, name != "model.forward"))
        rows.append(_span_row("POST /predict", period, total, traces, False, is_root=True))
    return pd.DataFrame(rows)


def _span_row(
    name: str, period: str, mean: float, count: int, dependency: bool, *, is_root: bool = False
) -> dict[str, Any]:
    return {
        "name": name,
        "period": period,
        "count": count,
        "mean_ms": mean,
        "p95_ms": mean * 1.6,
        "is_root": is_root,
        "is_dependency": dependency,
        "num_traces": count,
    }


def build(scenario: Scenario) -> DiagnosisInputs:
    """Aggregate the scenario's requests into diagnosis inputs, as the pipeline does."""
    periods = {"baseline": scenario.baseline, "window": scenario.window}
    overall = Comparison(*(_stats(p, np.ones(len(p.version), bool)) for p in periods.values()))
    slices = {
        "model_version": _slices(periods, "version"),
        "host": _slices(periods, "host"),
    }
    return DiagnosisInputs(
        model=MODEL,
        window=(T0, T0 + HOUR),
        baseline=(T0 - HOUR, T0),
        overall=overall,
        slices=slices,
        onset_at=scenario.onset_at,
        minute_series=_minute_series(periods),
        events=_events(scenario.events),
        feature_drift=scenario.feature_drift,
        null_rates=scenario.null_rates,
        spans=scenario.spans,
        metrics=scenario.metrics,
        operator_diff=scenario.operator_diff,
        operator_versions=scenario.operator_versions,
    )


def _stats(period: Period, mask: np.ndarray) -> SliceStats:
    latency = period.latency_ms[mask]
    return SliceStats(
        num_requests=int(mask.sum()),
        num_errors=int(period.is_error[mask].sum()),
        latency_sum_ms=float(latency.sum()),
        num_with_input_size=int(mask.sum()),
        input_size_sum=float(period.input_size[mask].sum()),
        histogram=Histogram.from_values(latency) if latency.size else Histogram.empty(),
    )


def _slices(periods: dict[str, Period], attribute: str) -> dict[str, Comparison]:
    values = sorted(
        set().union(*(set(getattr(p, attribute)) for p in periods.values()))  # type: ignore[arg-type]
    )
    return {
        str(value): Comparison(
            *(_stats(p, getattr(p, attribute) == value) for p in periods.values())
        )
        for value in values
    }


def _minute_series(periods: dict[str, Period]) -> pd.DataFrame:
    frames = []
    for offset, (name, period) in enumerate(periods.items()):
        frame = pd.DataFrame(
            {
                "minute": period.minute + 60 * offset,
                "latency_ms": period.latency_ms,
                "input_size": period.input_size,
            }
        )
        grouped = frame.groupby("minute").agg(
            num_requests=("latency_ms", "size"),
            p95=("latency_ms", lambda s: float(np.quantile(s, 0.95))),
            mean_ms=("latency_ms", "mean"),
            mean_input_size=("input_size", "mean"),
        )
        grouped["period"] = name
        frames.append(grouped.reset_index())
    series = pd.concat(frames, ignore_index=True)
    series["bucket_start"] = [T0 - HOUR + dt.timedelta(minutes=int(m)) for m in series["minute"]]
    return series.drop(columns=["minute"])


def _events(events: list[dict[str, Any]]) -> pd.DataFrame:
    columns = ["timestamp", "kind", "model_version", "traffic_pct", "description"]
    frame = pd.DataFrame(events, columns=columns)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return frame


# Injected causes: each changes the window as that incident would.


def inject_canary(scenario: Scenario, *, share: float = 0.2, slowdown: float = 2.5) -> None:
    """Version v7 takes `share` of the window's traffic and is `slowdown` times slower."""
    window = scenario.window
    canary = scenario.rng.random(len(window.version)) < share
    window.version[canary] = "v7"
    window.latency_ms[canary] *= slowdown
    scenario.events.append(
        {
            "timestamp": T0 + dt.timedelta(minutes=2),
            "kind": "canary",
            "model_version": "v7",
            "traffic_pct": 100 * share,
            "description": "canary v7",
        }
    )
    scenario.onset_at = T0 + dt.timedelta(minutes=3)


def inject_host(scenario: Scenario, host: str = "gpu-3", *, slowdown: float = 2.5) -> None:
    """One host serves slowly, and its GPU runs hot and throttled."""
    window = scenario.window
    on_host = window.host == host
    window.latency_ms[on_host] *= slowdown
    scenario.metrics = _metrics(
        scenario.rng,
        gpu_temperature_c={host: (63.0, 91.0)},
        gpu_throttled={host: (0.0, 0.8)},
        gpu_sm_clock_mhz={host: (1980.0, 1100.0)},
    )


def inject_traffic_surge(scenario: Scenario, *, factor: float = 3.0) -> None:
    """Three times the requests; latency climbs with load and GPUs saturate."""
    rng = scenario.rng
    extra = _period(rng, int(len(scenario.window.version) * (factor - 1)))
    window = _concat(scenario.window, extra)
    # Load builds up over the hour: later minutes are busier and slower.
    window.minute = np.sort(rng.triangular(0, 60, 60, len(window.version)).astype(int))
    window.latency_ms = np.sort(window.latency_ms) * (1 + window.minute / 30.0)
    scenario.window = window
    util = dict.fromkeys(HOSTS, (55.0, 97.0))
    scenario.metrics = _metrics(rng, gpu_utilization_pct=util)


def inject_gpu_saturation(scenario: Scenario) -> None:
    """GPUs go to ~98 % utilization (another job landed on them); latency rises 1.8x."""
    scenario.window.latency_ms *= 1.8
    util = dict.fromkeys(HOSTS, (55.0, 98.0))
    scenario.metrics = _metrics(scenario.rng, gpu_utilization_pct=util)


def inject_input_size(scenario: Scenario, *, factor: float = 2.5) -> None:
    """Requests get `factor` times bigger; latency follows the size."""
    window = scenario.window
    window.input_size *= factor
    window.latency_ms = (10.0 + 0.1 * window.input_size) * scenario.rng.lognormal(
        0.0, 0.25, len(window.input_size)
    )


def inject_drift(scenario: Scenario) -> None:
    """`amount` drifts far past its threshold; latency does not change."""
    scenario.feature_drift.loc[
        scenario.feature_drift["feature"] == "amount", ["statistic", "drifted"]
    ] = [
        0.45,
        True,
    ]


def inject_dependency(
    scenario: Scenario, *, before_ms: float = 5.0, after_ms: float = 45.0
) -> None:
    """The feature store lookup slows from 5 to 45 ms; every request waits for it."""
    scenario.window.latency_ms += after_ms - before_ms
    scenario.spans = _spans(
        {"feature_store.lookup": (before_ms, after_ms), "model.forward": (20.0, 20.0)}
    )


def inject_operator(scenario: Scenario) -> None:
    """Canary v7 changed an operator: aten::matmul takes 3x longer per step in its trace."""
    inject_canary(scenario, share=0.3, slowdown=2.0)
    scenario.operator_versions = ("v6", "v7")
    scenario.operator_diff = pd.DataFrame(
        {
            "name": ["aten::matmul", "aten::layer_norm", "aten::relu", "aten::addmm"],
            "category": ["cpu_op"] * 4,
            "base_us": [4000.0, 800.0, 300.0, 1200.0],
            "target_us": [12000.0, 820.0, 290.0, 1250.0],
            "delta_us": [8000.0, 20.0, -10.0, 50.0],
            "is_new": [False, False, False, False],
        }
    )


def inject_errors(scenario: Scenario, version: str = "v7") -> None:
    """A new version v7 on 30 % of traffic fails 12 % of its requests (latency unchanged)."""
    window = scenario.window
    on_version = scenario.rng.random(len(window.version)) < 0.3
    window.version[on_version] = version
    window.is_error[on_version] = scenario.rng.random(int(on_version.sum())) < 0.12


def _concat(a: Period, b: Period) -> Period:
    return Period(
        *(np.concatenate([getattr(a, f), getattr(b, f)]) for f in Period.__dataclass_fields__)
    )
