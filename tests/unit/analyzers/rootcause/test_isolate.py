"""analyzers.rootcause.isolate: symptom, version/host concentration, changes, traffic, errors."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from analyzers.rootcause import isolate
from tests.unit.analyzers.rootcause import scenarios as sc


def run(check, scenario: sc.Scenario):  # type: ignore[no-untyped-def]
    inputs = sc.build(scenario)
    return check(inputs, isolate.describe_symptom(inputs))


def test_symptom_quantifies_the_rise() -> None:
    scenario = sc.healthy()
    scenario.window.latency_ms *= 2.0
    inputs = sc.build(scenario)

    symptom = isolate.describe_symptom(inputs)
    result = isolate.check_symptom(inputs, symptom)

    assert symptom.metric == "p95_latency_ms"
    assert symptom.latency_regressed
    assert symptom.change == pytest.approx(1.0, abs=0.08)
    assert result.status == "fail"
    assert result.evidence["window"]["p95_ms"] == pytest.approx(
        2 * result.evidence["baseline"]["p95_ms"], rel=0.08
    )


def test_symptom_is_inconclusive_without_traffic() -> None:
    scenario = sc.healthy(requests_per_hour=20)

    result = run(isolate.check_symptom, scenario)

    assert result.status == "inconclusive"
    assert "too little traffic" in result.summary


def test_error_only_regression_names_the_error_rate() -> None:
    scenario = sc.healthy()
    sc.inject_errors(scenario)

    symptom = isolate.describe_symptom(sc.build(scenario))

    assert (symptom.metric, symptom.errors_regressed, symptom.latency_regressed) == (
        "error_rate",
        True,
        False,
    )


def test_contribution_is_one_for_the_slice_that_carries_it_and_low_for_fleet_wide() -> None:
    one_host = sc.healthy()
    sc.inject_host(one_host, "gpu-1", slowdown=3.0)
    fleet = sc.healthy()
    fleet.window.latency_ms *= 2.0

    hot = isolate.slice_table(sc.build(one_host), "host", 0.95).set_index("value")
    flat = isolate.slice_table(sc.build(fleet), "host", 0.95)

    assert hot.loc["gpu-1", "contribution"] > 0.8
    assert hot.drop("gpu-1")["contribution"].max() < 0.2
    assert flat["contribution"].max() < 0.2


def test_a_slow_canary_is_a_deploy_cause_with_its_rollback() -> None:
    scenario = sc.healthy()
    sc.inject_canary(scenario, share=0.25, slowdown=3.0)

    result = run(isolate.check_versions, scenario)

    assert result.status == "fail"
    [cause] = result.causes
    assert (cause.kind, cause.scope) == ("deploy", {"model_version": "v7"})
    assert "v6" in cause.action
    assert "canary" in cause.summary


def test_a_canary_as_fast_as_stable_is_no_cause() -> None:
    scenario = sc.healthy()
    sc.inject_canary(scenario, slowdown=1.0)
    scenario.window.latency_ms *= 1.5  # slower everywhere, not in the canary

    result = run(isolate.check_versions, scenario)

    assert result.causes == ()


def test_changes_finds_the_nearest_event_before_the_onset() -> None:
    scenario = sc.healthy()
    scenario.window.latency_ms *= 2
    scenario.onset_at = sc.T0 + dt.timedelta(minutes=10)
    scenario.events = [
        {"timestamp": sc.T0 - dt.timedelta(minutes=50), "kind": "deploy", "model_version": "v6"},
        {"timestamp": sc.T0 + dt.timedelta(minutes=5), "kind": "config", "description": "batch 64"},
        {"timestamp": sc.T0 + dt.timedelta(minutes=40), "kind": "deploy", "model_version": "v8"},
    ]

    result = run(isolate.check_changes, scenario)

    assert result.evidence["nearest"]["kind"] == "config"
    assert "batch 64" in result.summary
    assert "5 min before" in result.summary
    assert [c.scope for c in result.causes] == [{"change": "config"}]


def test_traffic_surge_needs_a_latency_symptom() -> None:
    calm = sc.healthy()
    calm.window = sc._concat(calm.window, sc._period(calm.rng, 12000))
    surge = sc.healthy()
    sc.inject_traffic_surge(surge)

    assert run(isolate.check_traffic, calm).causes == ()
    [cause] = run(isolate.check_traffic, surge).causes
    assert cause.kind == "traffic_surge"
    assert cause.evidence["ratio"] == pytest.approx(3.0, rel=0.01)


def test_errors_are_pinned_on_the_version_that_fails() -> None:
    scenario = sc.healthy()
    sc.inject_errors(scenario, "v9")

    [cause] = run(isolate.check_errors, scenario).causes

    assert (cause.kind, cause.scope) == ("error_spike", {"model_version": "v9"})
    assert "Roll back" in cause.action


def test_a_host_that_was_always_slower_is_not_a_regression() -> None:
    scenario = sc.healthy()
    for period in (scenario.baseline, scenario.window):
        period.latency_ms[period.host == "gpu-2"] *= 1.6  # an older GPU, slower all along

    inputs = sc.build(scenario)
    symptom = isolate.describe_symptom(inputs)

    assert not symptom.latency_regressed
    assert isolate.slices_regressed(inputs) == []


def test_one_slow_host_of_many_is_a_regression_though_the_model_p95_barely_moves() -> None:
    scenario = sc.healthy()
    on_host = scenario.window.host == "gpu-4"
    # Slower on one host in four, by less than it takes to lift the model's p95 by 20 %.
    scenario.window.latency_ms[on_host] *= 1.5

    inputs = sc.build(scenario)
    symptom = isolate.describe_symptom(inputs)
    hosts = isolate.check_hosts(inputs, symptom)

    model_p95 = inputs.overall.window.quantile(0.95) / inputs.overall.baseline.quantile(0.95)
    assert model_p95 < 1.2
    assert symptom.latency_regressed
    assert isolate.slices_regressed(inputs) == [("host", "gpu-4")]
    assert [c.scope for c in hosts.causes] == [{"host": "gpu-4"}]


def test_a_rollout_that_started_in_the_window_is_rolled_back_not_shifted() -> None:
    scenario = sc.healthy()
    # v7 replaced v6 a third into the window: 2/3 of the window's traffic, all of its end.
    replaced = scenario.window.minute >= 20
    scenario.window.version[replaced] = "v7"
    scenario.window.latency_ms[replaced] *= 2.5
    inputs = dataclasses.replace(sc.build(scenario), recent_version_shares={"v7": 1.0})

    result = isolate.check_versions(inputs, isolate.describe_symptom(inputs))

    [cause] = result.causes
    assert cause.scope == {"model_version": "v7"}
    assert cause.action.startswith("Roll back")
    assert "rollout" in cause.summary


def test_a_canary_that_started_late_is_still_a_new_version() -> None:
    scenario = sc.healthy()
    # 10 % of the traffic in the window's last 15 minutes: 2.5 % of the window.
    late = (scenario.window.minute >= 45) & (scenario.rng.random(len(scenario.window.minute)) < 0.1)
    scenario.window.version[late] = "v7"
    scenario.window.latency_ms[late] *= 4.0
    inputs = dataclasses.replace(sc.build(scenario), recent_version_shares={"v6": 0.9, "v7": 0.1})

    assert isolate.new_versions(inputs) == ["v7"]
    assert isolate.is_partial_rollout(inputs, "v7", 0.025)


def test_changes_skip_a_rollback_after_the_onset_and_look_through_the_window_without_one() -> None:
    scenario = sc.healthy()
    scenario.window.latency_ms *= 2
    scenario.events = [
        {"timestamp": sc.T0 + dt.timedelta(minutes=25), "kind": "config", "description": "x"},
        {"timestamp": sc.T0 + dt.timedelta(minutes=32), "kind": "rollback"},
    ]
    with_onset = dataclasses.replace(sc.build(scenario), onset_at=sc.T0 + dt.timedelta(minutes=27))
    without_onset = sc.build(scenario)

    found = isolate.check_changes(with_onset, isolate.describe_symptom(with_onset))
    unanchored = isolate.check_changes(without_onset, isolate.describe_symptom(without_onset))

    assert found.evidence["nearest"]["kind"] == "config"
    assert unanchored.evidence["nearest"]["kind"] == "config"
    assert [c.scope for c in unanchored.causes] == [{"change": "config"}]
