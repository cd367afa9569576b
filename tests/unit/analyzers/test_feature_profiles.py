"""Feature profiles: merging, serialisation, and drift from profiles against raw drift.

The tolerances here are the ones the README states. KLL sketches compact at random, so the
bounds carry a margin over the largest errors measured in many repetitions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analyzers.drift import detect_drift, detect_drift_from_profiles, profile_kind
from analyzers.feature_profiles import (
    FeatureProfile,
    deserialize_profile_map,
    merge_profile_maps,
    profile_frame,
    profile_from_summary,
    serialize_profile_map,
)

#: Largest |profile statistic - raw statistic| per test on continuous numeric features:
#: (absolute, relative to the raw statistic), added.
TOLERANCE = {
    "wasserstein": (0.025, 0.1),
    "ks": (0.005, 0.0),
    "jensenshannon": (0.04, 0.0),
    "hellinger": (0.04, 0.0),
    "psi": (0.1, 0.6),
}


def hourly(frame: pd.DataFrame, hours: int = 24) -> dict[str, FeatureProfile]:
    """Profiles built per hour-sized chunk and merged, as the hourly rollups are."""
    parts = np.array_split(np.arange(len(frame)), hours)
    return merge_profile_maps(profile_frame(frame.iloc[part]) for part in parts)


def sample(name: str, size: int, shift: float, rng: np.random.Generator) -> np.ndarray:
    if name == "normal":
        return rng.normal(shift, 1, size)
    if name == "lognormal":
        return rng.lognormal(shift, 1, size)
    if name == "bimodal":
        half = size // 2
        return np.concatenate([rng.normal(-2 + shift, 0.5, half), rng.normal(2, 0.5, size - half)])
    return rng.exponential(1 + shift, size)


def test_counts_moments_and_types() -> None:
    values = pd.Series([1.0, 2.0, None, np.nan, np.inf, 4.0, "x", True], dtype=object)
    profile = FeatureProfile.from_values(values)
    assert (profile.num_rows, profile.num_nulls, profile.num_numbers) == (8, 3, 3)
    assert (profile.num_strings, profile.num_bools, profile.num_integers) == (1, 1, 3)
    assert profile.mean == pytest.approx(7 / 3)
    assert profile.std == pytest.approx(np.std([1.0, 2.0, 4.0]))
    assert profile.value_type == "mixed"
    assert profile.category_counts() == {"1": 1, "2": 1, "4": 1, "x": 1, True: 1}


def test_merged_profiles_equal_the_profile_of_all_rows() -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": rng.normal(3, 2, 10_000), "c": rng.choice(["a", "b", "c"], 10_000)})
    whole, merged = profile_frame(frame), hourly(frame, 7)
    for name in ("x", "c"):
        assert merged[name].num_rows == whole[name].num_rows
        assert merged[name].category_counts() == whole[name].category_counts()
    assert merged["x"].mean == pytest.approx(frame["x"].mean(), rel=1e-12)
    assert merged["x"].std == pytest.approx(frame["x"].std(ddof=0), rel=1e-9)
    assert (merged["x"].minimum, merged["x"].maximum) == (frame["x"].min(), frame["x"].max())
    assert merged["x"].quantiles.n == 10_000


def test_profiles_serialise_and_come_back() -> None:
    frame = pd.DataFrame({"x": [1.5, 2.5, None], "c": ["a", None, "b"], "f": [True, False, True]})
    profiles = profile_frame(frame)
    restored = deserialize_profile_map(serialize_profile_map(profiles))
    assert set(restored) == {"x", "c", "f"}
    for name, profile in profiles.items():
        assert restored[name].to_bytes() == profile.to_bytes()
    assert restored["f"].category_counts() == {True: 2, False: 1}
    with pytest.raises(ValueError, match="not a feature profile"):
        FeatureProfile.from_bytes(b"garbage-garbage-garbage")


def test_many_distinct_numbers_stop_being_counted() -> None:
    few = FeatureProfile.from_values(pd.Series(np.arange(10.0).repeat(5)))
    assert few.count_distinct() == 10
    many = few.merge(FeatureProfile.from_values(pd.Series(np.arange(100.0, 200.0))))
    assert many.count_distinct() is None
    assert few.count_distinct() == 10


def test_profile_kinds_follow_the_integer_rule() -> None:
    assert profile_kind(FeatureProfile.from_values(pd.Series([1, 2, 3] * 5))) == "categorical"
    assert profile_kind(FeatureProfile.from_values(pd.Series(range(20)))) == "numeric"
    assert profile_kind(FeatureProfile.from_values(pd.Series([0.5, 1.5]))) == "numeric"
    assert profile_kind(FeatureProfile.from_values(pd.Series(["a"]))) == "categorical"
    assert profile_kind(FeatureProfile.from_values(pd.Series([None]))) is None


@pytest.mark.parametrize("test", ["chisquare", "z", "jensenshannon", "psi", "hellinger"])
def test_count_based_tests_from_profiles_equal_raw(test: str) -> None:
    rng = np.random.default_rng(2)
    reference = pd.DataFrame({"c": rng.choice(["a", "b"], 5000), "n": rng.integers(0, 2, 5000)})
    current = pd.DataFrame(
        {"c": rng.choice(["a", "b"], 3000, p=[0.45, 0.55]), "n": rng.integers(0, 2, 3000)}
    )
    kinds = {"c": "categorical", "n": "categorical"}
    raw = detect_drift(reference, current, tests={"c": test, "n": test}, kinds=kinds)
    from_profiles = detect_drift_from_profiles(
        hourly(reference), hourly(current), tests={"c": test, "n": test}, kinds=kinds
    )
    for name in ("c", "n"):
        assert from_profiles.feature(name).statistic == pytest.approx(
            raw.feature(name).statistic, rel=1e-9, abs=1e-12
        )
        assert from_profiles.feature(name).drifted == raw.feature(name).drifted


def test_default_tests_from_profiles_match_raw_choices() -> None:
    rng = np.random.default_rng(4)
    reference = pd.DataFrame({"x": rng.normal(0, 1, 800), "c": rng.choice(["a", "b", "c"], 800)})
    current = pd.DataFrame({"x": rng.normal(0.3, 1, 900), "c": rng.choice(["a", "b", "c"], 900)})
    raw = detect_drift(reference, current)
    from_profiles = detect_drift_from_profiles(hourly(reference), hourly(current))
    assert [f.test for f in from_profiles.features] == [f.test for f in raw.features]
    assert from_profiles.source == "profiles"


@pytest.mark.parametrize("distribution", ["normal", "lognormal", "bimodal", "exponential"])
@pytest.mark.parametrize("size", [5_000, 100_000])
def test_continuous_statistics_from_profiles_within_the_stated_tolerance(
    distribution: str, size: int
) -> None:
    rng = np.random.default_rng(size)
    reference = pd.DataFrame({"x": sample(distribution, size, 0.0, rng)})
    for shift in (0.0, 0.3, 1.0):
        current = pd.DataFrame({"x": sample(distribution, size, shift, rng)})
        ref_profiles, cur_profiles = hourly(reference), hourly(current)
        for test in ("wasserstein", "ks", "jensenshannon", "hellinger", "psi"):
            raw = detect_drift(reference, current, tests={"x": test}).feature("x")
            approx = detect_drift_from_profiles(
                ref_profiles, cur_profiles, tests={"x": test}
            ).feature("x")
            absolute, relative = TOLERANCE[test]
            bound = absolute + relative * raw.statistic
            assert abs(approx.statistic - raw.statistic) <= bound, (test, shift)
            if abs(raw.score - raw.threshold) > bound and test != "ks":
                assert approx.drifted == raw.drifted, (test, shift)


def test_a_profile_rebuilt_from_quantiles_keeps_count_and_shape() -> None:
    rng = np.random.default_rng(9)
    values = rng.normal(10, 2, 50_000)
    ranks = (np.arange(1024) + 0.5) / 1024
    rebuilt = profile_from_summary(
        num_rows=50_000,
        num_nulls=0,
        num_numbers=50_000,
        num_integers=0,
        num_bools=0,
        num_strings=0,
        mean=float(values.mean()),
        std=float(values.std()),
        minimum=float(values.min()),
        maximum=float(values.max()),
        quantile_values=np.quantile(values, ranks),
        frequent_items=[],
    )
    assert rebuilt.quantiles.n == 50_000
    assert rebuilt.quantiles.get_quantile(0.5) == pytest.approx(10, abs=0.05)
    original = FeatureProfile.from_values(pd.Series(values))
    result = detect_drift_from_profiles({"x": original}, {"x": rebuilt})
    assert result.feature("x").statistic < 0.01
    assert not result.dataset_drifted
