"""Incident scenarios for the diagnosis, built from the contract formats of DESIGN 3.1 alone.

Each scenario is a small serving fleet seen from outside: inference records (JSON, as a client
would POST them), deploy/config events, per-GPU and per-host metric samples under DESIGN's
well-known names, OTLP/JSON trace export requests and PyTorch profiler trace uploads. It has at
most one injected cause (two for the co-occurring scenarios) and says what a correct diagnosis
names: the cause kind ranked first, its scope and words its action must use; or no cause at all.

The fleet is deliberately unlike the other test factories: Kubernetes-style tags (region, zone,
pod next to host), several GPUs per host, Poisson arrivals with a diurnal rate, a queueing
latency model that grows with load, heavy-tailed noise (lognormal plus occasional stalls), an
incident that starts some minutes into the window, rolling updates that take minutes, and
windows from 15 minutes to 6 hours at 0.1 to 12 requests per second.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import orjson

DATA = Path(__file__).resolve().parents[2] / "data"
#: A Wednesday; the diurnal rate peaks at 15:00 UTC.
DAY = dt.datetime(2025, 3, 12, tzinfo=dt.UTC)
PEAK_HOUR = 15.0
GPU_MEMORY_TOTAL_MB = 81559.0
SPAN_KIND_INTERNAL, SPAN_KIND_SERVER, SPAN_KIND_CLIENT = 1, 2, 3


@dataclass(frozen=True)
class Expect:
    """What a correct diagnosis says.

    Attributes:
        kinds: acceptable kinds of the top cause; empty: `causes` must be empty.
        scope: items the top cause's scope must contain.
        action_words: the top cause's action must contain one of these (case-insensitive).
        also: (kind, scope items) pairs that must all be among the first `len(also)` causes
            (co-occurring causes, in either order).
    """

    kinds: frozenset[str] = frozenset()
    scope: dict[str, str] = field(default_factory=dict)
    action_words: tuple[str, ...] = ()
    also: tuple[tuple[str, dict[str, str]], ...] = ()


@dataclass(frozen=True)
class Spec:
    """The knobs of one simulated fleet; every `*_after` factor applies from the onset on."""

    name: str
    model: str = "ranker-xl"
    seed: int = 1
    window_start: dt.datetime = DAY + dt.timedelta(hours=14)
    window_minutes: float = 60.0
    onset_minute: float = 12.0
    recovery_minute: float | None = None
    rate_per_s: float = 2.5
    diurnal_amplitude: float = 0.15
    surge_after: float = 1.0
    hosts: tuple[str, ...] = ("gke-ml-a1", "gke-ml-a2", "gke-ml-b1", "gke-ml-b2", "gke-ml-c1")
    gpus_per_host: int = 2
    old_version: str = "2025.03.1"
    new_version: str | None = None
    new_share: float = 1.0
    rollout_minutes: float = 6.0
    new_slowdown: float = 1.0
    base_ms: float = 38.0
    per_input_ms: float = 0.0
    input_mean: float = 0.0
    input_after: float = 1.0
    sigma: float = 0.3
    stall_share: float = 0.01
    utilization: float = 0.3
    slow_host: str | None = None
    host_slowdown: float = 1.0
    host_fault: str | None = None  # thermal | power | cpu | gpu_memory
    gpu_memory_all_after: float | None = None
    fleet_slowdown_after: float = 1.0
    dependency: str | None = None
    dependency_ms: float = 6.0
    dependency_after: float = 1.0
    trace_share: float = 0.25
    null_feature: str | None = None
    null_share_after: float = 0.0
    shifted_feature: str | None = None
    shift_after: float = 1.0
    error_share: float = 0.004
    new_error_share: float | None = None
    events: tuple[dict[str, Any], ...] = ()
    profiles: bool = False
    metric_seconds: float = 60.0
    epoch_timestamps: bool = False
    host_tag: str = "host"
    #: How spans name their model: "trace_id" (records carry the trace id) or "attribute"
    #: (a `model.name` resource attribute, records without trace ids).
    span_link: str = "trace_id"
    #: Hosts that are always this much slower (an older GPU generation), baseline included.
    slower_hosts: tuple[tuple[str, float], ...] = ()
    expect: Expect = field(default_factory=Expect)

    @property
    def window_end(self) -> dt.datetime:
        return self.window_start + dt.timedelta(minutes=self.window_minutes)

    @property
    def baseline_start(self) -> dt.datetime:
        return self.window_start - dt.timedelta(minutes=self.window_minutes)

    @property
    def onset(self) -> dt.datetime:
        return self.window_start + dt.timedelta(minutes=self.onset_minute)

    def during(self, seconds: np.ndarray) -> np.ndarray:
        """Whether each time (seconds after the baseline start) is inside the incident."""
        start = (self.onset - self.baseline_start).total_seconds()
        end = math.inf
        if self.recovery_minute is not None:
            end = (self.window_minutes + self.recovery_minute) * 60
        return (seconds >= start) & (seconds < end)


@dataclass
class Scenario:
    """What to send, and what a correct diagnosis says."""

    spec: Spec
    records: list[dict[str, Any]]
    events: list[dict[str, Any]]
    metrics: list[dict[str, Any]]
    otlp_requests: list[dict[str, Any]]
    profiles: list[tuple[dict[str, str], Path]]


# --- traffic --------------------------------------------------------------------------------


def _rate_per_s(spec: Spec, seconds: np.ndarray) -> np.ndarray:
    """Requests per second at `seconds` after the baseline start: diurnal, times the surge."""
    hours = (spec.baseline_start - DAY).total_seconds() / 3600 + seconds / 3600
    diurnal = 1 + spec.diurnal_amplitude * np.cos(2 * np.pi * (hours - PEAK_HOUR) / 24)
    return spec.rate_per_s * diurnal * np.where(spec.during(seconds), spec.surge_after, 1.0)


def _arrivals(spec: Spec, rng: np.random.Generator) -> np.ndarray:
    """Poisson arrival times (seconds after the baseline start) by thinning."""
    span_s = 2 * spec.window_minutes * 60
    peak = spec.rate_per_s * (1 + abs(spec.diurnal_amplitude)) * max(spec.surge_after, 1.0)
    times = np.sort(rng.uniform(0, span_s, rng.poisson(peak * span_s)))
    return times[rng.random(len(times)) < _rate_per_s(spec, times) / peak]


def _load(spec: Spec, seconds: np.ndarray) -> np.ndarray:
    """Load relative to the nominal rate (1.0 = `rate_per_s`)."""
    return _rate_per_s(spec, seconds) / spec.rate_per_s


def _queueing(spec: Spec, load: np.ndarray) -> np.ndarray:
    """M/M/1-style slowdown against nominal load: (1 - rho0) / (1 - rho), rho capped."""
    rho = np.minimum(spec.utilization * load, 0.93)
    return (1 - spec.utilization) / (1 - rho)


# --- records ----------------------------------------------------------------------------------


@dataclass
class _Requests:
    seconds: np.ndarray
    host: np.ndarray
    version: np.ndarray
    input_size: np.ndarray | None
    dependency_ms: np.ndarray | None
    latency_ms: np.ndarray
    is_error: np.ndarray
    after: np.ndarray


def _versions(spec: Spec, rng: np.random.Generator, seconds: np.ndarray) -> np.ndarray:
    version = np.full(len(seconds), spec.old_version, dtype=object)
    if spec.new_version is None:
        return version
    onset_s = (spec.onset - spec.baseline_start).total_seconds()
    ramp = np.clip((seconds - onset_s) / max(spec.rollout_minutes * 60, 1), 0, 1)
    version[rng.random(len(seconds)) < ramp * spec.new_share] = spec.new_version
    return version


def _simulate(spec: Spec, rng: np.random.Generator) -> _Requests:
    seconds = _arrivals(spec, rng)
    n = len(seconds)
    after = spec.during(seconds)
    host = rng.choice(np.array(spec.hosts, dtype=object), n)
    version = _versions(spec, rng, seconds)
    latency = spec.base_ms * rng.lognormal(0, spec.sigma, n) * _queueing(spec, _load(spec, seconds))
    input_size = None
    if spec.input_mean > 0:
        input_size = np.round(
            rng.lognormal(math.log(spec.input_mean) - 0.18, 0.6, n)
            * np.where(after, spec.input_after, 1.0)
        )
        latency += spec.per_input_ms * input_size * rng.lognormal(0, 0.1, n)
    latency *= np.where(version == spec.new_version, spec.new_slowdown, 1.0)
    latency *= np.where(after & (host == spec.slow_host), spec.host_slowdown, 1.0)
    for name, factor in spec.slower_hosts:
        latency *= np.where(host == name, factor, 1.0)
    latency *= np.where(after, spec.fleet_slowdown_after, 1.0)
    stalls = rng.random(n) < spec.stall_share
    latency[stalls] *= rng.uniform(3, 9, int(stalls.sum()))
    dependency_ms = None
    if spec.dependency is not None:
        dependency_ms = (
            spec.dependency_ms
            * rng.lognormal(0, 0.35, n)
            * np.where(after, spec.dependency_after, 1.0)
        )
        latency += dependency_ms
    error_share = np.full(n, spec.error_share)
    if spec.new_error_share is not None:
        error_share[version == spec.new_version] = spec.new_error_share
    is_error = rng.random(n) < error_share
    return _Requests(seconds, host, version, input_size, dependency_ms, latency, is_error, after)


def _region(host: str) -> tuple[str, str]:
    zone = {"a": "europe-west4-a", "b": "europe-west4-b", "c": "europe-west4-c"}
    letter = host.rsplit("-", 1)[-1][0]
    return "europe-west4", zone.get(letter, "europe-west4-a")


def _features(spec: Spec, rng: np.random.Generator, req: _Requests) -> list[dict[str, Any]]:
    n = len(req.seconds)
    tenure = rng.gamma(1.5, 200, n).round()
    basket = rng.lognormal(3.2, 0.8, n) * np.where(
        req.after & (spec.shifted_feature == "basket_value"), spec.shift_after, 1.0
    )
    clicks = rng.poisson(7, n)
    device = rng.choice(["ios", "android", "web"], n, p=[0.45, 0.35, 0.2])
    country = rng.choice(["NL", "DE", "BE", "FR", "PL"], n, p=[0.4, 0.25, 0.15, 0.12, 0.08])
    returning = rng.random(n) < 0.62
    merchant = np.minimum(rng.zipf(1.3, n), 20000)
    columns: dict[str, list[Any]] = {
        "user_tenure_days": tenure.tolist(),
        "basket_value": np.round(basket, 2).tolist(),
        "session_clicks": clicks.tolist(),
        "device_os": device.tolist(),
        "country": country.tolist(),
        "is_returning": returning.tolist(),
        "merchant_id": [f"m{m:05d}" for m in merchant],
    }
    for name, values in columns.items():
        null_share = np.full(n, 0.01)
        if name == spec.null_feature:
            null_share = np.where(req.after, spec.null_share_after, 0.01)
        for i in np.flatnonzero(rng.random(n) < null_share):
            values[i] = None
    return [{name: columns[name][i] for name in columns} for i in range(n)]


def _timestamp(spec: Spec, at: dt.datetime) -> Any:
    if spec.epoch_timestamps:
        return round(at.timestamp(), 3)
    return at.isoformat().replace("+00:00", "Z")


def _records(
    spec: Spec, rng: np.random.Generator, req: _Requests
) -> tuple[list[dict[str, Any]], list[str | None]]:
    features = _features(spec, rng, req)
    traced = rng.random(len(req.seconds)) < (spec.trace_share if spec.dependency else 0.0)
    records, trace_ids = [], []
    for i, second in enumerate(req.seconds):
        at = spec.baseline_start + dt.timedelta(seconds=float(second))
        host = str(req.host[i])
        region, zone = _region(host)
        trace_id = rng.bytes(16).hex() if traced[i] else None
        record: dict[str, Any] = {
            "model": spec.model,
            "model_version": str(req.version[i]),
            "timestamp": _timestamp(spec, at),
            "request_id": f"{spec.name}-{i:07d}",
            "latency_ms": round(float(req.latency_ms[i]), 3),
            "status": "error" if req.is_error[i] else "ok",
            "features": features[i],
            "prediction": round(float(rng.random()), 4),
            "tags": {
                spec.host_tag: host,
                "region": region,
                "zone": zone,
                "pod": f"{spec.model}-7c9f{spec.hosts.index(host)}-x{i % 7}",
            },
        }
        if req.is_error[i]:
            record["error"] = "upstream timeout"
        if req.input_size is not None:
            record["input_size"] = float(req.input_size[i])
        if trace_id is not None and spec.span_link == "trace_id":
            record["trace_id"] = trace_id
        records.append(record)
        trace_ids.append(trace_id)
    return records, trace_ids


# --- spans ------------------------------------------------------------------------------------


def _attribute(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": str(value)}}


def _span(
    trace_id: str,
    span_id: str,
    parent: str | None,
    name: str,
    kind: int,
    start_ns: int,
    duration_ms: float,
    attributes: dict[str, Any],
) -> dict[str, Any]:
    span = {
        "traceId": trace_id,
        "spanId": span_id,
        "name": name,
        "kind": kind,
        "startTimeUnixNano": str(start_ns),
        "endTimeUnixNano": str(start_ns + int(duration_ms * 1e6)),
        "attributes": [_attribute(k, v) for k, v in attributes.items()],
        "status": {"code": 1},
    }
    if parent is not None:
        span["parentSpanId"] = parent
    return span


def _otlp(
    spec: Spec, rng: np.random.Generator, req: _Requests, trace_ids: list[str | None]
) -> list[dict[str, Any]]:
    """Traced requests as OTLP/JSON export requests: a server root span, a client call to
    the dependency, the model's forward pass; ~2000 spans per request."""
    if spec.dependency is None or req.dependency_ms is None:
        return []
    spans = []
    for i, trace_id in enumerate(trace_ids):
        if trace_id is None:
            continue
        at = spec.baseline_start + dt.timedelta(seconds=float(req.seconds[i]))
        start_ns = int(at.timestamp() * 1e9)
        root, call, forward = (rng.bytes(8).hex() for _ in range(3))
        total, dep = float(req.latency_ms[i]), float(req.dependency_ms[i])
        spans += [
            _span(trace_id, root, None, "POST /v2/rank", SPAN_KIND_SERVER, start_ns, total,
                  {"http.route": "/v2/rank", "http.response.status_code": 200}),
            _span(trace_id, call, root, spec.dependency, SPAN_KIND_CLIENT, start_ns + 300_000,
                  dep, {"rpc.system": "grpc", "server.address": "feature-store.ml.svc"}),
            _span(trace_id, forward, root, "ranker.forward", SPAN_KIND_INTERNAL,
                  start_ns + 300_000 + int(dep * 1e6), max(total - dep - 0.6, 0.1),
                  {"model.version": str(req.version[i])}),
        ]  # fmt: skip
    resource = {
        "attributes": [
            _attribute("service.name", "ranking-api"),
            _attribute("k8s.namespace.name", "ml-serving"),
        ]
    }
    if spec.span_link == "attribute":
        resource["attributes"].append(_attribute("model.name", spec.model))
    return [
        {
            "resourceSpans": [
                {
                    "resource": resource,
                    "scopeSpans": [
                        {
                            "scope": {"name": "opentelemetry.instrumentation.fastapi"},
                            "spans": spans[start : start + 2000],
                        }
                    ],
                }
            ]
        }
        for start in range(0, len(spans), 2000)
    ]


# --- metrics ----------------------------------------------------------------------------------


def _metrics(spec: Spec, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Per host, every `metric_seconds`: per GPU utilization, memory, temperature, power and
    SM clock; per host CPU, memory and queue length."""
    steps = np.arange(0, 2 * spec.window_minutes * 60, spec.metric_seconds)
    load = _load(spec, steps)
    after = spec.during(steps)
    samples: list[dict[str, Any]] = []
    for host in spec.hosts:
        faulty = after & (host == spec.slow_host)
        for gpu in range(spec.gpus_per_host):
            values = _gpu_values(spec, rng, load, after, faulty)
            samples += _samples(spec, steps, host, f"gpu{gpu}", values, {"gpu_model": "H100"})
        samples += _samples(spec, steps, host, "cpu", _host_values(spec, rng, load, faulty), {})
    return samples


def _gpu_values(
    spec: Spec, rng: np.random.Generator, load: np.ndarray, after: np.ndarray, faulty: np.ndarray
) -> dict[str, np.ndarray]:
    n = len(load)
    utilization = np.clip(100 * spec.utilization * 1.3 * load + rng.normal(0, 4, n), 0, 100)
    memory = 47000 + 3000 * load + rng.normal(0, 400, n)
    if spec.gpu_memory_all_after is not None:
        memory = np.where(after, spec.gpu_memory_all_after * GPU_MEMORY_TOTAL_MB, memory)
    temperature = 52 + 0.18 * utilization + rng.normal(0, 1.5, n)
    power = 180 + 4.2 * utilization + rng.normal(0, 15, n)
    clock = 1980 - rng.exponential(8, n)
    if spec.host_fault == "thermal":
        temperature = np.where(faulty, 89 + rng.normal(0, 1.2, n), temperature)
        clock = np.where(faulty, 1420 + rng.normal(0, 40, n), clock)
    elif spec.host_fault == "power":
        power = np.where(faulty, 700 - rng.exponential(2, n), power)
        clock = np.where(faulty, 1530 + rng.normal(0, 35, n), clock)
    elif spec.host_fault == "gpu_memory":
        memory = np.where(faulty, GPU_MEMORY_TOTAL_MB * 0.985 + rng.normal(0, 150, n), memory)
    return {
        "gpu_utilization_pct": utilization,
        "gpu_memory_used_mb": np.minimum(memory, GPU_MEMORY_TOTAL_MB - 64),
        "gpu_memory_total_mb": np.full(n, GPU_MEMORY_TOTAL_MB),
        "gpu_temperature_c": temperature,
        "gpu_power_w": power,
        "gpu_sm_clock_mhz": clock,
    }


def _host_values(
    spec: Spec, rng: np.random.Generator, load: np.ndarray, faulty: np.ndarray
) -> dict[str, np.ndarray]:
    n = len(load)
    cpu = np.clip(28 + 14 * load + rng.normal(0, 5, n), 0, 100)
    if spec.host_fault == "cpu":
        cpu = np.where(faulty, np.clip(97 + rng.normal(0, 1.5, n), 0, 100), cpu)
    queue = rng.poisson(np.maximum(_queueing(spec, load) * spec.utilization * 6, 0.1))
    return {
        "cpu_utilization_pct": cpu,
        "memory_used_mb": 61000 + rng.normal(0, 800, n),
        "queue_length": queue.astype(float),
    }


def _samples(
    spec: Spec,
    steps: np.ndarray,
    host: str,
    resource: str,
    values: dict[str, np.ndarray],
    tags: dict[str, str],
) -> list[dict[str, Any]]:
    region, zone = _region(host)
    samples = []
    for name, series in values.items():
        for second, value in zip(steps, series, strict=True):
            at = spec.baseline_start + dt.timedelta(seconds=float(second))
            samples.append(
                {
                    "timestamp": _timestamp(spec, at),
                    "host": host,
                    "resource": resource,
                    "name": name,
                    "value": round(float(value), 2),
                    "tags": {"region": region, "zone": zone, **tags},
                }
            )
    return samples


# --- assembly ---------------------------------------------------------------------------------


def build(spec: Spec) -> Scenario:
    """Everything the scenario sends, generated from `spec` with its seed."""
    rng = np.random.default_rng(spec.seed)
    requests = _simulate(spec, rng)
    records, trace_ids = _records(spec, rng, requests)
    events = [
        {"model": spec.model, **event, "timestamp": _timestamp(spec, event["timestamp"])}
        for event in spec.events
    ]
    profiles = []
    if spec.profiles and spec.new_version is not None:
        profiles = [
            (
                {
                    "model": spec.model,
                    "model_version": version,
                    "host": spec.hosts[0],
                    "captured_at": at.isoformat(),
                },
                DATA / name,
            )
            for version, name, at in (
                (spec.old_version, "profile_v1.json.gz", spec.baseline_start),
                (spec.new_version, "profile_v2.json.gz", spec.onset + dt.timedelta(minutes=8)),
            )
        ]
    return Scenario(
        spec,
        records,
        events,
        _metrics(spec, rng),
        _otlp(spec, rng, requests, trace_ids),
        profiles,
    )


def _event(spec: Spec, kind: str, minutes_after_onset: float = -1.0, **fields: Any) -> Spec:
    at = spec.onset + dt.timedelta(minutes=minutes_after_onset)
    return replace(spec, events=(*spec.events, {"kind": kind, "timestamp": at, **fields}))


def _deploy(spec: Spec, version: str, *, kind: str = "deploy", pct: float = 100.0) -> Spec:
    spec = replace(spec, new_version=version, new_share=pct / 100)
    return _event(
        spec,
        kind,
        0.0,
        model_version=version,
        traffic_pct=pct,
        description=f"{kind} {version} via argo rollout",
    )


def _steady_events(spec: Spec) -> Spec:
    """A scale event long before the baseline (routine autoscaling noise)."""
    at = spec.baseline_start - dt.timedelta(hours=3)
    event = {"kind": "scale", "timestamp": at, "description": "hpa: replicas 4 -> 5"}
    return replace(spec, events=(*spec.events, event))


# --- the scenarios ------------------------------------------------------------------------------

ROLLBACK = ("roll back", "rollback", "revert")
DRAIN = ("drain", "cordon", "replace", "restart")
SCALE = ("scale", "replica", "capacity", "rate-limit")
DGX = tuple(f"dgx-{i:02d}" for i in range(1, 9))


def _expect(kinds: str, scope: dict[str, str] | None = None, *words: str) -> Expect:
    return Expect(frozenset(kinds.split()), scope or {}, words)


def _both(first: tuple[str, dict[str, str]], second: tuple[str, dict[str, str]]) -> Expect:
    return Expect(frozenset({first[0], second[0]}), also=(first, second))


def _bad_deploy() -> Spec:
    new = "2025.03.2"
    spec = Spec(
        "bad_deploy_rollout",
        seed=11,
        expect=_expect("deploy model_operator", {"model_version": new}, *ROLLBACK),
    )
    return replace(_deploy(spec, new), new_slowdown=1.9)


def _failing_deploy() -> Spec:
    spec = Spec(
        "deploy_errors",
        model="fraud-gbdt",
        seed=28,
        old_version="7",
        base_ms=12.0,
        expect=_expect("error_spike", {"model_version": "8"}, *ROLLBACK),
    )
    return replace(_deploy(spec, "8"), new_error_share=0.06)


def _canary() -> Spec:
    spec = Spec(
        "canary_slow",
        model="img-classifier",
        seed=12,
        rate_per_s=4.0,
        old_version="v41",
        base_ms=22.0,
        expect=_expect("deploy", {"model_version": "v42"}, *ROLLBACK, "shift"),
    )
    return replace(_deploy(spec, "v42", kind="canary", pct=12), new_slowdown=2.6)


def _thermal_host() -> Spec:
    return Spec(
        "host_thermal",
        seed=13,
        window_minutes=30,
        onset_minute=6,
        rate_per_s=5.0,
        hosts=DGX,
        gpus_per_host=4,
        slow_host="dgx-05",
        host_slowdown=2.2,
        host_fault="thermal",
        metric_seconds=30,
        expect=_expect("host_degradation", {"host": "dgx-05"}, *DRAIN),
    )


def _power_host() -> Spec:
    return Spec(
        "host_power_cap",
        seed=14,
        slow_host="gke-ml-b1",
        host_slowdown=1.7,
        host_fault="power",
        expect=_expect("host_degradation", {"host": "gke-ml-b1"}, *DRAIN),
    )


def _cpu_host() -> Spec:
    return Spec(
        "host_cpu_saturation",
        model="churn-gbm",
        seed=15,
        base_ms=9.0,
        rate_per_s=3.0,
        slow_host="gke-ml-c1",
        host_slowdown=2.0,
        host_fault="cpu",
        gpus_per_host=0,
        expect=_expect("host_degradation", {"host": "gke-ml-c1"}, *DRAIN),
    )


def _gpu_memory_host() -> Spec:
    return Spec(
        "gpu_memory_pressure",
        seed=16,
        slow_host="gke-ml-a2",
        host_slowdown=2.1,
        host_fault="gpu_memory",
        expect=_expect("gpu_saturation host_degradation", {"host": "gke-ml-a2"}, *DRAIN),
    )


def _gpu_memory_fleet() -> Spec:
    return Spec(
        "gpu_memory_fleet",
        model="chat-llm-8b",
        seed=26,
        base_ms=120.0,
        rate_per_s=1.5,
        gpu_memory_all_after=0.985,
        fleet_slowdown_after=1.6,
        expect=_expect("gpu_saturation", None, *SCALE, "batch"),
    )


def _surge() -> Spec:
    return Spec(
        "traffic_surge",
        seed=17,
        rate_per_s=2.0,
        surge_after=2.2,
        utilization=0.33,
        expect=_expect("traffic_surge", None, *SCALE),
    )


def _dependency() -> Spec:
    name = "feast.get_online_features"
    return Spec(
        "feature_store_slow",
        seed=18,
        dependency=name,
        dependency_ms=7.0,
        dependency_after=6.0,
        base_ms=30.0,
        expect=_expect("dependency_latency", {"span": name}, "feast", "dependency"),
    )


def _input_size() -> Spec:
    return Spec(
        "prompt_length_shift",
        model="chat-llm-8b",
        seed=19,
        window_minutes=120,
        onset_minute=20,
        rate_per_s=1.5,
        base_ms=180.0,
        per_input_ms=0.35,
        input_mean=450,
        input_after=2.8,
        sigma=0.25,
        expect=_expect("input_size", None, "input", "prompt", "size"),
    )


def _image_size() -> Spec:
    return Spec(
        "image_bytes_shift",
        model="img-classifier",
        seed=27,
        window_minutes=30,
        onset_minute=8,
        rate_per_s=3.0,
        base_ms=15.0,
        per_input_ms=0.00012,
        input_mean=250_000,
        input_after=3.2,
        expect=_expect("input_size", None, "input", "size"),
    )


def _null_spike() -> Spec:
    return Spec(
        "null_rate_spike",
        seed=20,
        null_feature="user_tenure_days",
        null_share_after=0.45,
        expect=_expect("data_drift", {"feature": "user_tenure_days"}, "tenure"),
    )


def _feature_shift() -> Spec:
    return Spec(
        "feature_shift",
        seed=21,
        window_minutes=180,
        onset_minute=30,
        rate_per_s=0.8,
        shifted_feature="basket_value",
        shift_after=2.5,
        metric_seconds=120,
        expect=_expect("data_drift", {"feature": "basket_value"}, "basket_value"),
    )


def _config() -> Spec:
    spec = Spec(
        "config_change",
        seed=22,
        fleet_slowdown_after=1.7,
        expect=_expect("deploy", None, "revert", "config"),
    )
    return _event(spec, "config", -2.0, description="triton: max_batch_size 32 -> 4")


def _operator() -> Spec:
    spec = Spec(
        "operator_regression",
        seed=23,
        profiles=True,
        old_version="r17",
        expect=_expect(
            "model_operator", {"operator": "aten::addmm", "model_version": "r18"}, *ROLLBACK
        ),
    )
    return replace(_deploy(spec, "r18"), new_slowdown=1.6)


def _canary_and_hot_host() -> Spec:
    spec = Spec(
        "canary_plus_hot_host",
        seed=24,
        rate_per_s=4.0,
        slow_host="gke-ml-c1",
        host_slowdown=2.4,
        host_fault="thermal",
        expect=_both(
            ("deploy", {"model_version": "2025.03.2"}),
            ("host_degradation", {"host": "gke-ml-c1"}),
        ),
    )
    return replace(_deploy(spec, "2025.03.2", kind="canary", pct=20), new_slowdown=2.5)


def _dependency_and_nulls() -> Spec:
    return Spec(
        "feature_store_plus_nulls",
        seed=25,
        dependency="feast.get_online_features",
        dependency_ms=6.0,
        dependency_after=7.0,
        null_feature="country",
        null_share_after=0.3,
        expect=_both(
            ("dependency_latency", {"span": "feast.get_online_features"}),
            ("data_drift", {"feature": "country"}),
        ),
    )


def _quiet_noisy() -> Spec:
    return _steady_events(Spec("quiet_noisy", seed=30, sigma=0.55, stall_share=0.03))


def _quiet_low_traffic() -> Spec:
    return Spec(
        "quiet_low_traffic_15m",
        seed=31,
        window_minutes=15,
        onset_minute=3,
        rate_per_s=1.0,
        sigma=0.5,
        stall_share=0.02,
        metric_seconds=30,
        epoch_timestamps=True,
    )


def _quiet_diurnal() -> Spec:
    return Spec(
        "quiet_diurnal_6h",
        seed=32,
        window_start=DAY.replace(hour=7),
        window_minutes=360,
        onset_minute=0,
        rate_per_s=0.6,
        diurnal_amplitude=0.7,
        utilization=0.12,
        sigma=0.35,
        metric_seconds=300,
    )


def _quiet_high_traffic() -> Spec:
    return Spec(
        "quiet_high_traffic_15m",
        seed=33,
        window_minutes=15,
        onset_minute=3,
        rate_per_s=12.0,
        fleet_slowdown_after=1.04,
        metric_seconds=30,
    )


def _quiet_heterogeneous() -> Spec:
    return Spec("quiet_slower_host_always", seed=35, slower_hosts=(("gke-ml-b2", 1.5),))


def _quiet_benign_deploy() -> Spec:
    return _deploy(Spec("quiet_benign_deploy", seed=34, sigma=0.4), "2025.03.2")


SPECS: dict[str, Callable[[], Spec]] = {
    fn().name: fn
    for fn in (
        _bad_deploy,
        _failing_deploy,
        _canary,
        _thermal_host,
        _power_host,
        _cpu_host,
        _gpu_memory_host,
        _gpu_memory_fleet,
        _surge,
        _dependency,
        _input_size,
        _image_size,
        _null_spike,
        _feature_shift,
        _config,
        _operator,
        _canary_and_hot_host,
        _dependency_and_nulls,
        _quiet_noisy,
        _quiet_low_traffic,
        _quiet_diurnal,
        _quiet_high_traffic,
        _quiet_heterogeneous,
        _quiet_benign_deploy,
    )
}


# --- sending and judging ----------------------------------------------------------------------


def send(client: Any, headers: dict[str, str], scenario: Scenario) -> None:
    """POST everything through the public API, in batches a client SDK would send."""
    for endpoint, items, size in (
        ("/api/v1/records", scenario.records, 5000),
        ("/api/v1/events", scenario.events, 100),
        ("/api/v1/metrics", scenario.metrics, 10000),
    ):
        for start in range(0, len(items), size):
            body = orjson.dumps(items[start : start + size])
            response = client.post(
                endpoint, content=body, headers={**headers, "Content-Type": "application/json"}
            )
            assert response.status_code == 200, (endpoint, response.text)
    for request in scenario.otlp_requests:
        response = client.post(
            "/v1/traces",
            content=orjson.dumps(request),
            headers={**headers, "Content-Type": "application/json"},
        )
        assert response.status_code == 200, response.text
    for params, path in scenario.profiles:
        response = client.post(
            "/api/v1/profiles",
            params=params,
            content=path.read_bytes(),
            headers={**headers, "Content-Type": "application/gzip"},
        )
        assert response.status_code in (200, 201), response.text


def request_diagnosis(client: Any, headers: dict[str, str], spec: Spec) -> dict[str, Any]:
    response = client.get(
        "/api/v1/diagnoses",
        params={
            "model": spec.model,
            "start": spec.window_start.isoformat(),
            "end": spec.window_end.isoformat(),
        },
        headers=headers,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@dataclass(frozen=True)
class Verdict:
    """How a diagnosis fared against the scenario's expectation."""

    name: str
    top: str
    kind_ok: bool
    scope_ok: bool
    action_ok: bool
    causes: list[str]

    @property
    def ok(self) -> bool:
        return self.kind_ok and self.scope_ok and self.action_ok


def _label(cause: dict[str, Any]) -> str:
    scope = ",".join(f"{k}={v}" for k, v in cause["scope"].items())
    return f"{cause['kind']}[{scope}]@{cause['score']:.2f}"


def _matches(cause: dict[str, Any], kind: str, scope: dict[str, str]) -> bool:
    return cause["kind"] == kind and scope.items() <= cause["scope"].items()


def judge(spec: Spec, body: dict[str, Any]) -> Verdict:
    causes = body["causes"]
    expect = spec.expect
    labels = [_label(c) for c in causes]
    if not expect.kinds:
        quiet = not causes
        return Verdict(spec.name, labels[0] if labels else "-", quiet, quiet, quiet, labels)
    if not causes:
        return Verdict(spec.name, "-", False, False, False, labels)
    top = causes[0]
    if expect.also:
        head = causes[: len(expect.also)]
        found = [any(_matches(c, k, s) for c in head) for k, s in expect.also]
        kinds = all(any(c["kind"] == k for c in head) for k, _ in expect.also)
        return Verdict(spec.name, labels[0], kinds, all(found), True, labels)
    action = top["action"].lower()
    return Verdict(
        spec.name,
        labels[0],
        top["kind"] in expect.kinds,
        expect.scope.items() <= top["scope"].items(),
        not expect.action_words or any(w.lower() in action for w in expect.action_words),
        labels,
    )


# --- variants ---------------------------------------------------------------------------------

_EFFECTS = (
    "new_slowdown",
    "host_slowdown",
    "fleet_slowdown_after",
    "dependency_after",
    "input_after",
    "surge_after",
    "shift_after",
)


def variant(spec: Spec, how: str) -> Spec:
    """The same incident seen differently: `late` onset, `low` traffic, a `long` (6 h) or
    `short` (15 min) window, a `weak` effect, records that name their machine `node` (a tag
    observe does not roll up by default) instead of `host`, or `seedN`."""
    name = f"{spec.name}:{how}"
    if how == "node":
        return replace(spec, name=name, host_tag="node")
    if how == "spanattr":
        return replace(spec, name=name, span_link="attribute")
    if how == "transient":
        return replace(spec, name=name, recovery_minute=spec.onset_minute + 20)
    if how == "early":
        return _shift_onset(replace(spec, name=name), 0.0)
    if how.startswith("seed"):
        return replace(spec, name=name, seed=spec.seed + 1000 * int(how[4:]))
    if how == "weak":
        effects = {f: 1 + (getattr(spec, f) - 1) * 0.55 for f in _EFFECTS}
        return replace(spec, name=name, null_share_after=spec.null_share_after * 0.5, **effects)
    if how == "low":
        return replace(spec, name=name, rate_per_s=spec.rate_per_s / 5)
    shape = {
        "late": (spec.window_minutes, 0.6 * spec.window_minutes, spec.rate_per_s, 60.0),
        "long": (360.0, 120.0, min(spec.rate_per_s, 0.6), 300.0),
        "short": (15.0, 4.0, spec.rate_per_s * 1.5, 30.0),
    }[how]
    minutes, onset, rate, metric_seconds = shape
    spec = replace(
        spec, name=name, window_minutes=minutes, rate_per_s=rate, metric_seconds=metric_seconds
    )
    return _shift_onset(spec, onset)


def _shift_onset(spec: Spec, onset_minute: float) -> Spec:
    """Move the onset, and the events that belong to the incident with it."""
    old = spec.window_start + dt.timedelta(minutes=spec.onset_minute)
    shift = dt.timedelta(minutes=onset_minute - spec.onset_minute)
    events = tuple(
        {**e, "timestamp": e["timestamp"] + shift}
        if abs(e["timestamp"] - old).total_seconds() < 1800
        else e
        for e in spec.events
    )
    return replace(spec, onset_minute=onset_minute, events=events)
