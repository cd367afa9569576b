"""Agreement with Evidently's DataDriftPreset on generated data sets.

36 data sets: numeric (normal, heavy-tailed, few-valued), categorical, binary (booleans and
0/1 integers), low-cardinality integer and null-heavy columns, reference sizes from 100 to
1,000,000, with and without drift. Per column, the verdict must agree on at least 99 % of
columns and the score (the p-value of a hypothesis test, else the distance) within 1e-6.
Evidently is installed with the dev extra, so this runs in CI; the 1M-row cases are `slow`.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest

from analyzers.drift import detect_drift

evidently = pytest.importorskip("evidently")

SCORE_TOLERANCE = 1e-6
MIN_AGREEMENT = 0.99

# Evidently's test names (its display names) for observe's.
DISPLAY_NAMES = {
    "K-S p_value": "ks",
    "chi-square p_value": "chisquare",
    "Z-test p_value": "z",
    "Wasserstein distance (normed)": "wasserstein",
    "Jensen-Shannon distance": "jensenshannon",
    "PSI": "psi",
    "Hellinger distance": "hellinger",
}


def make_frame(size: int, shift: float, seed: int) -> pd.DataFrame:
    """One data set side; `shift` 0 is the reference distribution, larger values drift."""
    rng = np.random.default_rng(seed)
    nulls = rng.random(size) < 0.8
    categories = ["a", "b", "c", "d", "e"]
    base = np.array([0.35, 0.25, 0.2, 0.15, 0.05])
    moved = base + shift * np.array([-0.2, -0.05, 0.0, 0.1, 0.15])
    return pd.DataFrame(
        {
            "normal": rng.normal(shift, 1.0, size),
            "heavy": rng.lognormal(0.0, 1.0 + shift, size),
            "few_floats": rng.choice(
                [0.5, 1.5, 2.5], size, p=[0.5 - shift / 4, 0.3, 0.2 + shift / 4]
            ),
            "category": rng.choice(categories, size, p=moved / moved.sum()),
            "flag": rng.random(size) < 0.3 + shift / 4,
            "binary_int": (rng.random(size) < 0.5 + shift / 4).astype(np.int64),
            "small_int": rng.integers(0, 6, size) + (rng.random(size) < shift / 2).astype(np.int64),
            "sparse_numeric": np.where(nulls, np.nan, rng.normal(shift, 1.0, size)),
            "sparse_category": pd.Series(
                np.where(nulls, None, rng.choice(categories[:3], size)), dtype=object
            ).where(~nulls | (rng.random(size) < shift / 5), None),
        }
    )


def cases() -> list[Any]:
    sizes = [100, 300, 700, 1000, 1001, 2000, 5000, 20_000, 100_000]
    params = []
    for index, size in enumerate(sizes):
        for shift in (0.0, 0.15, 0.6):
            current = size if size <= 20_000 else 20_000
            params.append(pytest.param(size, current, shift, index, id=f"ref{size}-shift{shift}"))
    for shift in (0.0, 0.6):  # 27 above, 2 here; 7 more with unequal sides below
        params.append(
            pytest.param(
                1_000_000, 100_000, shift, 50, id=f"ref1M-shift{shift}", marks=pytest.mark.slow
            )
        )
    for size, current, shift in [
        (100, 1000, 0.3),
        (1000, 100, 0.3),
        (150, 5000, 0.0),
        (5000, 150, 0.6),
        (50_000, 2000, 0.15),
        (999, 999, 0.05),
        (1500, 800, 0.05),
    ]:
        params.append(
            pytest.param(size, current, shift, 60, id=f"ref{size}-cur{current}-shift{shift}")
        )
    return params


def evidently_results(
    reference: pd.DataFrame, current: pd.DataFrame
) -> dict[str, tuple[str, float, bool]]:
    """Per column: (test, score, drifted) from Evidently's DataDriftPreset."""
    from evidently import Report
    from evidently.presets import DataDriftPreset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        snapshot = Report([DataDriftPreset()], include_tests=True).run(current, reference).dict()
    scores = {}
    for metric in snapshot["metrics"]:
        config = metric["config"]
        if config["type"].endswith("ValueDrift"):
            scores[config["column"]] = (DISPLAY_NAMES[config["method"]], float(metric["value"]))
    verdicts = {}
    for test in snapshot["tests"]:
        params = test["metric_config"]["params"]
        if params["type"].endswith("ValueDrift"):
            verdicts[params["column"]] = str(test["status"]).endswith("FAIL")
    return {c: (*scores[c], verdicts[c]) for c in scores}


ALL_RESULTS: list[bool] = []


@pytest.mark.parametrize(("ref_size", "cur_size", "shift", "seed"), cases())
def test_verdicts_and_scores_agree_with_evidently(
    ref_size: int, cur_size: int, shift: float, seed: int
) -> None:
    reference = make_frame(ref_size, 0.0, seed)
    current = make_frame(cur_size, shift, seed + 1000)
    expected = evidently_results(reference, current)
    result = detect_drift(reference, current)
    assert {f.feature for f in result.features} == set(expected)
    disagreements = []
    for feature in result.features:
        test, score, drifted = expected[feature.feature]
        assert feature.test == test, feature.feature
        assert feature.score == pytest.approx(score, abs=SCORE_TOLERANCE), feature.feature
        if feature.drifted != drifted:
            disagreements.append(feature.feature)
    agreement = 1 - len(disagreements) / len(result.features)
    assert agreement >= MIN_AGREEMENT, disagreements


def test_the_suite_covers_the_stated_range() -> None:
    params = cases()
    assert len(params) >= 30
    sizes = {p.values[0] for p in params}
    assert min(sizes) == 100
    assert max(sizes) == 1_000_000
    assert {p.values[2] > 0 for p in params} == {True, False}


def test_drifted_data_is_found_and_stable_data_is_not() -> None:
    """The generated data sets mean what their names say, so agreement is not trivial."""
    reference = make_frame(5000, 0.0, 1)
    assert not detect_drift(reference, make_frame(5000, 0.0, 2)).dataset_drifted
    drifted = detect_drift(reference, make_frame(5000, 0.6, 3))
    assert drifted.dataset_drifted
    assert drifted.feature("normal").drifted
    assert drifted.feature("category").drifted
