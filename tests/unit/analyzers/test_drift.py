"""detect_drift: kinds, default tests, per-feature options, nulls, plots and the verdict."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analyzers.drift import DriftResult, default_test, detect_drift, infer_kind


@pytest.mark.parametrize(
    ("kind", "num_reference", "num_distinct", "expected"),
    [
        ("numeric", 1000, None, "ks"),
        ("numeric", 1000, 4, "chisquare"),
        ("numeric", 1000, 2, "z"),
        ("categorical", 1000, 7, "chisquare"),
        ("categorical", 1000, 2, "z"),
        ("numeric", 1001, None, "wasserstein"),
        ("numeric", 1001, 5, "jensenshannon"),
        ("categorical", 1001, 2, "jensenshannon"),
    ],
)
def test_default_tests(
    kind: str, num_reference: int, num_distinct: int | None, expected: str
) -> None:
    assert default_test(kind, num_reference, num_distinct) == expected  # type: ignore[arg-type]


def test_kinds_are_inferred_as_evidently_does() -> None:
    assert infer_kind(pd.Series([0.5, 1.5])) == "numeric"
    assert infer_kind(pd.Series(range(11))) == "numeric"
    assert infer_kind(pd.Series([1, 2, 3] * 4)) == "categorical"
    assert infer_kind(pd.Series([True, False])) == "categorical"
    assert infer_kind(pd.Series(["a", None])) == "categorical"
    assert infer_kind(pd.Series([None, None], dtype=object)) is None


def frames(shift: float = 0.0, size: int = 2000) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)
    reference = pd.DataFrame(
        {"amount": rng.normal(0, 1, size), "country": rng.choice(["DE", "FR"], size)}
    )
    current = pd.DataFrame(
        {"amount": rng.normal(shift, 1, size), "country": rng.choice(["DE", "FR"], size)}
    )
    return reference, current


def test_a_shifted_feature_drifts_and_a_stable_one_does_not() -> None:
    reference, current = frames(shift=1.0)
    result = detect_drift(reference, current)
    amount, country = result.feature("amount"), result.feature("country")
    assert (amount.test, amount.drifted) == ("wasserstein", True)
    assert amount.statistic == pytest.approx(1.0, abs=0.1)
    assert (country.test, country.drifted) == ("jensenshannon", False)
    assert result.num_drifted == 1
    assert result.share_drifted == 0.5
    assert result.dataset_drifted  # 0.5 >= the default share 0.5
    assert not DriftResult(result.features, {}, 0.6, "raw").dataset_drifted


def test_tests_and_thresholds_per_feature() -> None:
    reference, current = frames(shift=0.05)
    result = detect_drift(reference, current, tests={"amount": "psi"}, thresholds={"amount": 0.001})
    amount = result.feature("amount")
    assert amount.test == "psi"
    assert amount.threshold == 0.001
    assert amount.drifted
    with pytest.raises(ValueError, match="unknown drift test"):
        detect_drift(reference, current, tests={"amount": "nope"})


def test_nulls_are_dropped_and_counted() -> None:
    reference = pd.DataFrame({"x": [1.0, 2.0, np.nan, np.inf, 3.0] * 100})
    current = pd.DataFrame({"x": [1.0, 2.0, 3.0, np.nan] * 100})
    feature = detect_drift(reference, current).feature("x")
    assert feature.num_reference == 300
    assert feature.num_current == 300
    assert feature.null_share_reference == pytest.approx(0.4)
    assert feature.null_share_current == pytest.approx(0.25)
    assert not feature.drifted


def test_features_on_one_side_or_without_values_are_skipped() -> None:
    reference = pd.DataFrame({"a": [1.0, 2.0], "b": [None, None], "only_ref": [1, 2]})
    current = pd.DataFrame({"a": [1.0, 2.5], "b": [None, None], "only_cur": [3, 4]})
    result = detect_drift(reference, current)
    assert [f.feature for f in result.features] == ["a"]
    assert result.skipped == {
        "b": "no values on either side",
        "only_cur": "not in the reference data",
        "only_ref": "not in the current data",
    }


def test_plot_data_for_both_kinds() -> None:
    reference, current = frames(shift=1.0)
    result = detect_drift(reference, current, plot_bins=10)
    histogram = result.feature("amount").plot
    assert histogram["type"] == "histogram"
    assert len(histogram["edges"]) == 11
    assert sum(histogram["reference"]) == pytest.approx(1.0)
    assert np.average(histogram["edges"][:-1], weights=histogram["current"]) > np.average(
        histogram["edges"][:-1], weights=histogram["reference"]
    )
    categories = result.feature("country").plot
    assert categories["type"] == "categories"
    assert set(categories["categories"]) == {"DE", "FR"}
    assert sum(categories["current"]) == pytest.approx(1.0)


def test_result_as_dict_and_frame() -> None:
    reference, current = frames(shift=1.0)
    result = detect_drift(reference, current)
    data = result.to_dict()
    assert data["num_features"] == 2
    assert data["dataset_drifted"] is True
    assert {f["feature"] for f in data["features"]} == {"amount", "country"}
    assert list(result.to_frame().columns) == [
        "feature",
        "kind",
        "test",
        "statistic",
        "p_value",
        "threshold",
        "drifted",
    ]
