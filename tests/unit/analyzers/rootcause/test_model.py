"""analyzers.rootcause.model: version latency, span breakdown, profiler operators."""

from __future__ import annotations

import pandas as pd

from analyzers.rootcause import isolate, model
from tests.unit.analyzers.rootcause import scenarios as sc


def run(check, scenario: sc.Scenario):  # type: ignore[no-untyped-def]
    inputs = sc.build(scenario)
    return check(inputs, isolate.describe_symptom(inputs))


def test_the_new_version_is_compared_with_the_previous_on_the_same_inputs() -> None:
    scenario = sc.healthy()
    sc.inject_canary(scenario, share=0.5, slowdown=2.0)

    result = run(model.check_version_latency, scenario)

    assert (result.evidence["previous_version"], result.evidence["new_version"]) == ("v6", "v7")
    assert 1.8 < result.evidence["latency_per_input_ratio"] < 2.2
    assert result.causes[0].scope == {"model_version": "v7"}


def test_a_new_version_that_only_got_bigger_inputs_is_not_slower() -> None:
    scenario = sc.healthy()
    sc.inject_canary(scenario, share=0.5, slowdown=1.0)
    canary = scenario.window.version == "v7"
    scenario.window.input_size[canary] *= 2
    scenario.window.latency_ms[canary] *= 1.9

    result = run(model.check_version_latency, scenario)

    assert result.status == "pass"


def test_span_breakdown_names_the_model_span_that_grew() -> None:
    scenario = sc.healthy()
    scenario.window.latency_ms += 30
    scenario.spans = sc._spans({"feature_store.lookup": (5.0, 5.0), "model.forward": (20.0, 50.0)})

    result = run(model.check_span_breakdown, scenario)

    assert result.status == "fail"
    assert result.summary.startswith("model.forward grew")


def test_operators_rank_the_added_time_and_flag_new_operators() -> None:
    scenario = sc.healthy()
    sc.inject_canary(scenario, share=0.3, slowdown=2.0)
    scenario.operator_versions = ("v6", "v7")
    scenario.operator_diff = pd.DataFrame(
        {
            "name": ["aten::layer_norm", "aten::matmul"],
            "category": ["cpu_op", "cpu_op"],
            "base_us": [0.0, 4000.0],
            "target_us": [3000.0, 4100.0],
            "delta_us": [3000.0, 100.0],
            "is_new": [True, False],
        }
    )

    result = run(model.check_operators, scenario)

    assert "aten::layer_norm (new)" in result.summary
    [cause] = result.causes
    assert cause.scope == {"operator": "aten::layer_norm", "model_version": "v7"}


def test_operator_noise_is_not_a_cause() -> None:
    scenario = sc.healthy()
    sc.inject_canary(scenario)
    scenario.operator_versions = ("v6", "v7")
    scenario.operator_diff = pd.DataFrame(
        {
            "name": ["aten::matmul", "aten::relu"],
            "category": ["cpu_op", "cpu_op"],
            "base_us": [4000.0, 300.0],
            "target_us": [4050.0, 290.0],
            "delta_us": [50.0, -10.0],
            "is_new": [False, False],
        }
    )

    result = run(model.check_operators, scenario)

    assert (result.status, result.causes) == ("pass", ())


def test_without_traces_model_checks_are_skipped() -> None:
    scenario = sc.healthy()
    scenario.spans = scenario.spans.iloc[0:0]

    assert run(model.check_operators, scenario).status == "skipped"
    assert run(model.check_span_breakdown, scenario).status == "skipped"
    assert run(model.check_version_latency, scenario).status == "skipped"
