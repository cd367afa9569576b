"""Known-answer tests for every registered drift test, and the registry's rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from analyzers import stattests as st


def categorical(counts: dict[str, int]) -> np.ndarray:
    return np.array([key for key, count in counts.items() for _ in range(count)], dtype=object)


def test_every_test_the_issue_names_is_registered() -> None:
    names = {test.name for test in st.list_stattests()}
    assert names == {"ks", "chisquare", "z", "wasserstein", "jensenshannon", "psi", "hellinger"}
    assert st.get_stattest("ks").is_p_value
    assert not st.get_stattest("psi").is_p_value


def test_ks_on_disjoint_samples() -> None:
    # D = 1; the exact two-sided p-value for 3 against 3 is 2 / C(6, 3) = 0.1.
    result = st.get_stattest("ks")(np.array([1.0, 2, 3]), np.array([4.0, 5, 6]), kind="numeric")
    assert result.statistic == pytest.approx(1.0)
    assert result.p_value == pytest.approx(0.1)
    assert result.threshold == 0.05
    assert not result.drifted


def test_chisquare_known_answer() -> None:
    reference = categorical({"a": 50, "b": 50})
    current = categorical({"a": 30, "b": 70})
    result = st.get_stattest("chisquare")(reference, current, kind="categorical")
    assert result.statistic == pytest.approx(16.0)  # (20^2 / 50) * 2
    assert result.p_value == pytest.approx(stats.chi2.sf(16.0, 1))
    assert result.p_value == pytest.approx(6.334e-05, rel=1e-3)
    assert result.drifted


def test_chisquare_scales_expected_counts_to_the_current_size() -> None:
    reference = categorical({"a": 100, "b": 100})
    current = categorical({"a": 25, "b": 25})
    result = st.get_stattest("chisquare")(reference, current, kind="categorical")
    assert result.statistic == pytest.approx(0.0)
    assert result.p_value == pytest.approx(1.0)


def test_z_test_known_answer() -> None:
    reference = np.array([0] * 50 + [1] * 50)
    current = np.array([0] * 30 + [1] * 70)
    result = st.get_stattest("z")(reference, current, kind="categorical")
    # p1 = 0.5, p2 = 0.7, pooled 0.6: z = -0.2 / sqrt(0.6 * 0.4 * 0.02)
    assert result.statistic == pytest.approx(-0.2 / math.sqrt(0.0048))
    assert result.p_value == pytest.approx(0.0038924, rel=1e-4)
    assert result.drifted


def test_z_test_of_one_and_the_same_value_is_no_drift() -> None:
    result = st.get_stattest("z")(np.array([True] * 5), np.array([True] * 9), kind="categorical")
    assert result.p_value == 1.0
    assert not result.drifted


def test_wasserstein_is_normed_by_the_reference_deviation() -> None:
    result = st.get_stattest("wasserstein")(
        np.array([0.0, 1, 2, 3]), np.array([1.0, 2, 3, 4]), kind="numeric"
    )
    assert result.statistic == pytest.approx(1 / math.sqrt(1.25))
    assert result.p_value is None
    assert result.drifted


def test_wasserstein_norm_has_a_floor() -> None:
    result = st.get_stattest("wasserstein")(
        np.array([5.0, 5, 5]), np.array([5.0, 5, 6]), kind="numeric"
    )
    assert result.statistic == pytest.approx((1 / 3) / 0.001)


def test_fast_wasserstein_equals_scipy_with_ties() -> None:
    rng = np.random.default_rng(3)
    reference = rng.integers(0, 50, 5001).astype(float)
    current = rng.normal(20, 10, 3000).round(1)
    ours = st.wasserstein_from_sorted(np.sort(reference), np.sort(current))
    assert ours == pytest.approx(stats.wasserstein_distance(reference, current), rel=1e-12)


def test_jensenshannon_of_disjoint_categories_is_sqrt_ln2() -> None:
    result = st.get_stattest("jensenshannon")(
        categorical({"a": 10}), categorical({"b": 10}), kind="categorical"
    )
    assert result.statistic == pytest.approx(math.sqrt(math.log(2)))
    assert result.drifted


def test_psi_known_answer() -> None:
    reference = categorical({"a": 50, "b": 50})
    current = categorical({"a": 25, "b": 75})
    result = st.get_stattest("psi")(reference, current, kind="categorical")
    expected = 0.25 * math.log(2) - 0.25 * math.log(0.5 / 0.75)
    assert result.statistic == pytest.approx(expected)
    assert result.statistic == pytest.approx(0.274653, rel=1e-5)


def test_psi_fills_empty_bins() -> None:
    result = st.get_stattest("psi")(
        categorical({"a": 10}), categorical({"a": 5, "b": 5}), kind="categorical"
    )
    # The reference's empty bin gets 0.0001.
    expected = 0.5 * math.log(2) + (0.0001 - 0.5) * math.log(0.0001 / 0.5)
    assert result.statistic == pytest.approx(expected)


def test_hellinger_known_answers() -> None:
    reference = categorical({"a": 50, "b": 50})
    current = categorical({"a": 25, "b": 75})
    result = st.get_stattest("hellinger")(reference, current, kind="categorical")
    coefficient = math.sqrt(0.5 * 0.25) + math.sqrt(0.5 * 0.75)
    assert result.statistic == pytest.approx(math.sqrt(1 - coefficient))
    disjoint = st.get_stattest("hellinger")(
        np.array([0.0, 0.1]), np.array([10.0, 10.1]), kind="numeric"
    )
    assert disjoint.statistic == pytest.approx(1.0)


def test_numeric_binning_follows_numpy_sturges() -> None:
    rng = np.random.default_rng(5)
    reference, current = rng.normal(0, 1, 3000), rng.normal(0.5, 1, 2000)
    ref_counts, cur_counts = st.binned_counts(reference, current, kind="numeric")
    edges = np.histogram_bin_edges(np.concatenate([reference, current]), bins="sturges")
    assert np.array_equal(ref_counts, np.histogram(reference, edges)[0])
    assert np.array_equal(cur_counts, np.histogram(current, edges)[0])


def test_few_valued_numbers_are_counted_not_binned() -> None:
    ref_counts, cur_counts = st.binned_counts(
        np.array([1.0, 1, 2, 3]), np.array([3.0, 3, 4]), kind="numeric"
    )
    assert sorted(ref_counts) == [0, 1, 1, 2]
    assert sorted(cur_counts) == [0, 0, 1, 2]


def test_verdict_comparisons_follow_evidently() -> None:
    assert st.verdict("ks", 0.05, 0.05)  # KS: p <= threshold
    assert not st.verdict("chisquare", 0.05, 0.05)  # other p-values: p < threshold
    assert st.verdict("wasserstein", 0.1, 0.1)  # distances: >= threshold
    assert not st.verdict("psi", float("nan"), 0.1)


def test_threshold_overrides_the_default() -> None:
    result = st.get_stattest("psi")(
        categorical({"a": 50, "b": 50}),
        categorical({"a": 25, "b": 75}),
        kind="categorical",
        threshold=0.3,
    )
    assert result.threshold == 0.3
    assert not result.drifted


def test_unknown_tests_and_kinds_are_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown drift test 'kl'.*hellinger"):
        st.get_stattest("kl")
    with pytest.raises(ValueError, match="does not apply to categorical"):
        st.get_stattest("ks")(categorical({"a": 3}), categorical({"b": 3}), kind="categorical")
    with pytest.raises(ValueError, match="at least one value"):
        st.get_stattest("ks")(np.array([]), np.array([1.0]), kind="numeric")
