"""A simulated model-serving fleet that emits what DESIGN 3.1 says such a system sends observe.

`build(spec)` turns a `Spec` (traffic, fleet, versions, one injected fault) into inference
records (JSON, as a client would POST them), deploy/config events, per-GPU and per-host metric
samples under DESIGN's well-known names, OTLP/JSON trace export requests and PyTorch profiler
trace uploads. The incident scenarios built on it are in `diagnosis_scenarios`.

The fleet is deliberately unlike the other test factories: Kubernetes-style tags (region, zone,
pod next to host), several GPUs per host, Poisson arrivals with a diurnal rate, a queueing
latency model that grows with load, heavy-tailed noise (lognormal plus occasional stalls), an
incident that starts some minutes into the window, rolling updates that take minutes, and
windows from 15 minutes to 6 hours at 0.1 to 12 requests per second.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

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
