"""analyzers.rootcause: the ranker on windows with exactly one injected cause of each kind,
with two co-occurring causes, and with nothing wrong."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from analyzers.rootcause import diagnose
from tests.unit.analyzers.rootcause import scenarios as sc

SEEDS = (0, 1, 2)


def top(scenario: sc.Scenario) -> list[tuple[str, dict[str, str]]]:
    return [(c.kind, c.scope) for c in diagnose(sc.build(scenario)).causes]


@pytest.mark.parametrize("seed", SEEDS)
def test_nothing_wrong_means_no_causes(seed: int) -> None:
    diagnosis = diagnose(sc.build(sc.healthy(seed=seed)))

    assert diagnosis.causes == ()
    assert not diagnosis.symptom.is_regression
    assert {s.check for s in diagnosis.steps} >= {"symptom", "versions", "gpu_saturation"}


@pytest.mark.parametrize("seed", SEEDS)
def test_more_traffic_that_latency_absorbs_is_not_a_cause(seed: int) -> None:
    scenario = sc.healthy(seed=seed)
    scenario.window = sc._concat(scenario.window, sc._period(scenario.rng, 6000))

    assert top(scenario) == []


CASES: dict[str, tuple[Callable[[sc.Scenario], None], str, dict[str, str]]] = {
    "canary": (sc.inject_canary, "deploy", {"model_version": "v7"}),
    "host": (sc.inject_host, "host_degradation", {"host": "gpu-3"}),
    "surge": (sc.inject_traffic_surge, "traffic_surge", {"model": sc.MODEL}),
    "saturation": (sc.inject_gpu_saturation, "gpu_saturation", {}),
    "input-size": (sc.inject_input_size, "input_size", {"feature": "input_size"}),
    "drift": (sc.inject_drift, "data_drift", {"feature": "amount"}),
    "dependency": (sc.inject_dependency, "dependency_latency", {"span": "feature_store.lookup"}),
    "operator": (
        sc.inject_operator,
        "model_operator",
        {"operator": "aten::matmul", "model_version": "v7"},
    ),
    "errors": (sc.inject_errors, "error_spike", {"model_version": "v7"}),
}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("case", CASES)
def test_one_injected_cause_ranks_first(case: str, seed: int) -> None:
    inject, kind, scope = CASES[case]
    scenario = sc.healthy(seed=seed)
    inject(scenario)

    causes = diagnose(sc.build(scenario)).causes

    assert causes, f"{case}: no cause found"
    assert causes[0].kind == kind, [(c.kind, c.scope, round(c.score, 2)) for c in causes]
    assert scope.items() <= causes[0].scope.items()
    assert 0.3 <= causes[0].score <= 1.0
    assert causes[0].action


def test_a_surge_outranks_the_saturation_it_brings() -> None:
    scenario = sc.healthy(seed=3)
    sc.inject_traffic_surge(scenario)

    kinds = [c.kind for c in diagnose(sc.build(scenario)).causes]

    assert kinds[0] == "traffic_surge"
    assert kinds.index("traffic_surge") < kinds.index("gpu_saturation")


def test_the_operator_change_comes_with_its_deploy() -> None:
    scenario = sc.healthy(seed=4)
    sc.inject_operator(scenario)

    causes = diagnose(sc.build(scenario)).causes

    assert [c.kind for c in causes[:2]] == ["model_operator", "deploy"]
    assert causes[1].scope == {"model_version": "v7"}
    assert "v6" in causes[1].action


@pytest.mark.parametrize("seed", SEEDS)
def test_two_co_occurring_causes_are_both_found(seed: int) -> None:
    scenario = sc.healthy(seed=seed)
    sc.inject_host(scenario, "gpu-2", slowdown=3.0)
    sc.inject_dependency(scenario, before_ms=5.0, after_ms=30.0)

    found = top(scenario)[:3]

    assert ("host_degradation", {"host": "gpu-2"}) in found
    assert ("dependency_latency", {"span": "feature_store.lookup"}) in found


def test_drift_alongside_a_host_problem_is_reported_too() -> None:
    scenario = sc.healthy(seed=5)
    sc.inject_host(scenario)
    sc.inject_drift(scenario)

    kinds = [kind for kind, _ in top(scenario)]

    assert kinds[0] == "host_degradation"
    assert "data_drift" in kinds


def test_steps_follow_the_checklist_order() -> None:
    scenario = sc.healthy(seed=6)
    sc.inject_canary(scenario)

    steps = [s.step for s in diagnose(sc.build(scenario)).steps]

    order = ["isolate", "data", "infra", "model"]
    assert steps == sorted(steps, key=order.index)
    assert set(steps) == set(order)


def test_a_slow_host_with_full_gpu_memory_is_gpu_saturation_first() -> None:
    scenario = sc.healthy()
    scenario.window.latency_ms[scenario.window.host == "gpu-2"] *= 2.5
    scenario.metrics = sc._metrics(scenario.rng, gpu_memory_used_mb={"gpu-2": (30_000.0, 80_800.0)})

    diagnosis = diagnose(sc.build(scenario))

    top = diagnosis.causes[0]
    assert (top.kind, top.scope) == ("gpu_saturation", {"host": "gpu-2"})
    assert "isolated_by" in top.evidence
    assert all(c.kind != "host_degradation" for c in diagnosis.causes)
