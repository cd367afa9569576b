"""analyzers.rootcause.data: input size, feature drift, null rates, dependency spans."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analyzers.rootcause import data, isolate, model
from tests.unit.analyzers.rootcause import scenarios as sc


def run(check, scenario: sc.Scenario):  # type: ignore[no-untyped-def]
    inputs = sc.build(scenario)
    return check(inputs, isolate.describe_symptom(inputs))


def test_bigger_inputs_explain_the_latency_they_cost() -> None:
    scenario = sc.healthy()
    sc.inject_input_size(scenario, factor=2.0)

    result = run(data.check_input_size, scenario)

    assert result.status == "fail"
    assert result.evidence["ratio"] == pytest.approx(2.0, rel=0.05)
    assert result.evidence["share_of_latency_rise_explained"] > 0.7
    assert result.causes[0].kind == "input_size"


def test_bigger_inputs_do_not_explain_a_slowdown_of_another_kind() -> None:
    scenario = sc.healthy()
    scenario.window.input_size *= 1.3  # a little bigger ...
    scenario.window.latency_ms *= 3.0  # ... but far slower than that explains

    result = run(data.check_input_size, scenario)

    assert not result.causes or result.causes[0].score < 0.3


def test_without_input_sizes_the_check_is_skipped() -> None:
    scenario = sc.healthy()
    inputs = sc.build(scenario)
    overall = inputs.overall
    stripped = type(overall)(
        *(
            type(s)(s.num_requests, s.num_errors, s.latency_sum_ms, 0, 0.0, s.histogram)
            for s in (overall.baseline, overall.window)
        )
    )
    inputs = type(inputs)(**{**inputs.__dict__, "overall": stripped})

    assert data.check_input_size(inputs, isolate.describe_symptom(inputs)).status == "skipped"


def test_drifted_features_are_causes_strongest_first() -> None:
    scenario = sc.healthy()
    scenario.feature_drift = pd.DataFrame(
        {
            "feature": ["amount", "country", "num_tx"],
            "test": ["wasserstein", "chisquare", "wasserstein"],
            "statistic": [0.15, 40.0, 0.6],
            "p_value": [None, 1e-9, None],
            "threshold": [0.1, 0.05, 0.1],
            "drifted": [True, True, True],
        }
    )

    causes = run(data.check_feature_drift, scenario).causes

    assert [c.scope["feature"] for c in causes] == ["num_tx", "country", "amount"]
    assert all(c.kind == "data_drift" for c in causes)


def test_a_feature_that_stops_arriving_is_a_data_cause() -> None:
    scenario = sc.healthy()
    scenario.null_rates = pd.DataFrame(
        {"feature": ["amount", "country"], "baseline": [0.01, 0.0], "window": [0.6, 0.02]}
    )

    [cause] = run(data.check_null_rates, scenario).causes

    assert cause.scope == {"feature": "amount"}
    assert "60.0 %" in cause.summary


def test_a_slower_dependency_accounts_for_the_added_time() -> None:
    scenario = sc.healthy()
    sc.inject_dependency(scenario, before_ms=5.0, after_ms=25.0)

    result = run(data.check_dependencies, scenario)

    row = pd.DataFrame(result.evidence["spans"]).set_index("name").loc["feature_store.lookup"]
    assert row["ratio"] == pytest.approx(5.0)
    assert row["share"] == pytest.approx(1.0)
    assert result.causes[0].scope == {"span": "feature_store.lookup"}


def test_a_dependency_that_slowed_a_little_is_not_the_cause() -> None:
    scenario = sc.healthy()
    scenario.window.latency_ms *= 2.0
    scenario.spans = sc._spans({"feature_store.lookup": (5.0, 7.0), "model.forward": (20.0, 60.0)})

    result = run(data.check_dependencies, scenario)

    assert result.status == "fail"  # it did slow down ...
    assert result.causes == ()  # ... but explains too little of the added time


def _skew(rows: list[tuple[str, str, str, float | None, bool]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "reference": "training-2026-11",
                "period": period,
                "feature": feature,
                "issue": issue,
                "test": "wasserstein" if issue == "distribution" else None,
                "statistic": statistic,
                "p_value": None,
                "threshold": 0.1 if issue == "distribution" else None,
                "skewed": skewed,
            }
            for period, feature, issue, statistic, skewed in rows
        ]
    )


def test_skew_new_in_the_window_is_a_cause_standing_skew_is_not() -> None:
    scenario = sc.healthy()
    inputs = sc.build(scenario)
    skew = _skew(
        [
            ("baseline", "amount", "distribution", 0.3, True),
            ("window", "amount", "distribution", 0.31, True),
            ("baseline", "country", "distribution", 0.02, False),
            ("window", "country", "distribution", 0.5, True),
            ("window", "device", "missing", None, True),
        ]
    )
    inputs = type(inputs)(**{**inputs.__dict__, "skew": skew})

    result = data.check_skew(inputs, isolate.describe_symptom(inputs))

    assert result.status == "fail"
    assert sorted(c.scope["feature"] for c in result.causes) == ["country", "device"]
    assert all(c.kind == "data_drift" for c in result.causes)


def test_serving_that_matches_training_passes_and_no_reference_skips() -> None:
    scenario = sc.healthy()
    inputs = sc.build(scenario)
    clean = type(inputs)(
        **{**inputs.__dict__, "skew": _skew([("window", "amount", "distribution", 0.01, False)])}
    )

    assert data.check_skew(clean, isolate.describe_symptom(clean)).status == "pass"
    assert data.check_skew(inputs, isolate.describe_symptom(inputs)).status == "skipped"


def test_too_few_spans_to_compare_is_no_change() -> None:
    scenario = sc.healthy()
    scenario.window.latency_ms *= 2
    scenario.spans = sc._spans(
        {"feature_store.lookup": (5.0, 40.0), "model.forward": (20.0, 20.0)}, traces=5
    )

    result = run(data.check_dependencies, scenario)

    assert result.status == "pass"
    assert result.causes == ()


def test_dependency_spans_too_rare_to_compare_are_no_evidence() -> None:
    scenario = sc.healthy()
    scenario.window.latency_ms *= 2.0
    scenario.spans = sc._spans(
        {"feature_store.lookup": (5.0, 25.0), "model.forward": (20.0, 60.0)}, traces=3
    )
    inputs = sc.build(scenario)

    dependencies = data.check_dependencies(inputs, isolate.describe_symptom(inputs))
    breakdown = model.check_span_breakdown(inputs, isolate.describe_symptom(inputs))

    assert (dependencies.status, dependencies.evidence["spans"]) == ("pass", [])
    assert (breakdown.status, breakdown.evidence["spans"]) == ("pass", [])


def _merchants(n: int, seed: int) -> pd.Series:
    """Identifier-like values: thousands of merchants, most seen once or twice."""
    rng = np.random.default_rng(seed)
    return pd.Series([f"m{m:05d}" for m in np.minimum(rng.zipf(1.3, n), 20_000)])


def test_rare_categories_are_pooled_and_common_ones_kept() -> None:
    baseline, window = _merchants(3000, 1), _merchants(3000, 2)

    pooled_baseline, pooled_window = data.pool_categories(baseline, window)

    kept = set(pooled_baseline) | set(pooled_window)
    assert data.RARE_CATEGORY in kept
    assert len(kept) <= data.MAX_CATEGORIES + 1
    assert "m00001" in kept  # the most common merchant


def test_two_samples_of_the_same_identifiers_are_homogeneous() -> None:
    p_values = [
        data.homogeneity_p_value(
            *data.pool_categories(_merchants(2000, s), _merchants(2000, s + 7))
        )
        for s in range(5)
    ]

    assert min(p_values) > 0.01


def test_a_merchant_flooding_in_is_not_pooled_away() -> None:
    baseline = _merchants(3000, 1)
    window = pd.concat([_merchants(2400, 2), pd.Series(["m19999"] * 600)], ignore_index=True)

    pooled_baseline, pooled_window = data.pool_categories(baseline, window)

    assert "m19999" in set(pooled_window)
    assert data.homogeneity_p_value(pooled_baseline, pooled_window) < 1e-6


def test_missing_values_stay_missing_when_pooling() -> None:
    baseline = pd.Series(["a"] * 50 + ["b"] * 50 + [None] * 10 + [f"x{i}" for i in range(40)])
    window = pd.Series(["a"] * 50 + ["b"] * 50 + [None] * 10 + [f"y{i}" for i in range(40)])

    pooled_baseline, _ = data.pool_categories(baseline, window)

    assert pooled_baseline.isna().sum() == 10
    assert set(pooled_baseline.dropna()) == {"a", "b", data.RARE_CATEGORY}
