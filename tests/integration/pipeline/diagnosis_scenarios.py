"""Incident scenarios for the diagnosis, built from the contract formats of DESIGN 3.1 alone
on the simulated fleet of `diagnosis_fleet`.

Each scenario injects at most one cause (two for the co-occurring ones) and says what a correct
diagnosis names: the kind of the cause ranked first, its scope and words its action must use;
or no cause at all. `variant` shows the same incident another way (a later onset, less
traffic, another window length, a weaker effect, ...). `send` posts a scenario through the
public API and `judge` scores the answer of GET /api/v1/diagnoses.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import orjson

from tests.integration.pipeline.diagnosis_fleet import DAY, Expect, Scenario, Spec, build

__all__ = [
    "SPECS",
    "Expect",
    "Scenario",
    "Spec",
    "build",
    "judge",
    "request_diagnosis",
    "send",
    "variant",
]

# --- building specs -----------------------------------------------------------------------------


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
