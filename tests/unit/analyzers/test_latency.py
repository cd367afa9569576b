"""analyzers.latency: change points with known answers, before/after tests, attribution."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analyzers.histograms import RELATIVE_ACCURACY, Histogram
from analyzers.latency import (
    attribute_shift,
    binary_segmentation,
    compare_histograms,
    compare_quantile,
    compare_samples,
    detect_change_points,
    histogram_counts,
    nearest_event,
    sample_counts,
)

T0 = dt.datetime(2026, 11, 16, 12, 0, tzinfo=dt.UTC)


def steps(levels: list[float], lengths: list[int], *, noise: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    signal = np.repeat(levels, lengths).astype(np.float64)
    return signal + rng.normal(0.0, noise, signal.size)


def near(found: list[int], expected: list[int], margin: int = 3) -> bool:
    return len(found) == len(expected) and all(
        abs(f - e) <= margin for f, e in zip(found, expected, strict=True)
    )


# --- detect_change_points --------------------------------------------------------------------


def test_one_step_is_found_where_it_is() -> None:
    values = steps([40.0, 60.0], [300, 300], noise=3.0)

    assert near(detect_change_points(values), [300])


def test_several_shifts_up_and_down_are_all_found() -> None:
    values = steps([40.0, 55.0, 45.0, 80.0, 40.0], [200, 150, 250, 100, 300], noise=3.0, seed=1)

    assert near(detect_change_points(values), [200, 350, 600, 700])


@pytest.mark.parametrize("seed", range(5))
def test_noise_alone_gives_no_change_point(seed: int) -> None:
    rng = np.random.default_rng(seed)

    assert detect_change_points(50.0 + rng.normal(0.0, 3.0, 2000)) == []


def test_heavy_tails_and_outliers_give_no_change_point() -> None:
    rng = np.random.default_rng(3)
    heavy = 50.0 * np.exp(0.3 * rng.standard_t(2, 3000))
    spiky = 50.0 + rng.normal(0.0, 2.0, 3000)
    spiky[rng.choice(3000, 40, replace=False)] *= 30  # timeouts: single-bucket spikes

    assert detect_change_points(heavy) == []
    assert detect_change_points(spiky) == []


def test_autocorrelated_wander_is_not_cut_into_steps_but_a_jump_in_it_is_found() -> None:
    rng = np.random.default_rng(4)
    wander = np.zeros(2000)
    for i in range(1, wander.size):
        wander[i] = 0.9 * wander[i - 1] + rng.normal()

    assert detect_change_points(wander) == []
    assert near(detect_change_points(wander + np.repeat([0.0, 10.0], 1000)), [1000])


@pytest.mark.parametrize("seed", range(5))
def test_a_regression_rolled_back_is_found_at_both_ends(seed: int) -> None:
    """Half an hour at 1.4x in ten hours: the best single split of the whole series has a small
    gain, but looking one level deeper finds both change points and nothing else."""
    rng = np.random.default_rng(seed)
    level = np.zeros(600)
    level[300:330] = np.log(1.4)
    values = 50.0 * np.exp(level + rng.normal(0.0, 0.1, 600))

    assert near(detect_change_points(values), [300, 330])


def test_binary_segmentation_keeps_only_change_points_that_pay_for_themselves() -> None:
    values = steps([0.0, 1.0, 0.0], [300, 30, 270], noise=0.1, seed=8)
    penalty = 3 * 0.1**2 * np.log(values.size)

    assert near(binary_segmentation(values, penalty), [300, 330])
    assert binary_segmentation(values, 1e9) == []
    assert len(binary_segmentation(values, penalty, limit=1)) == 1


def test_a_regression_is_a_ratio_whatever_the_level() -> None:
    """On the log scale a 1.5x regression of a 5 ms and of a 500 ms series look the same."""
    rng = np.random.default_rng(5)
    base = np.exp(rng.normal(0.0, 0.1, 400)) * np.repeat([1.0, 1.5], 200)

    assert near(detect_change_points(5.0 * base), [200])
    assert near(detect_change_points(500.0 * base), [200])


def test_missing_buckets_are_skipped_and_indices_refer_to_the_input() -> None:
    values = steps([40.0, 60.0], [300, 300], noise=3.0)
    values[250:320] = np.nan  # an outage: no traffic around the change
    values[[10, 400]] = np.inf

    found = detect_change_points(values)

    assert found == [320]  # the first observed bucket of the new level


@pytest.mark.parametrize(
    "values",
    [[], [42.0], [42.0] * 9, [42.0] * 500, [np.nan] * 50, list(range(8))],
    ids=["empty", "one", "short", "constant", "all-missing", "shorter-than-two-segments"],
)
def test_short_constant_and_empty_series_have_no_change_point(values: list[float]) -> None:
    assert detect_change_points(values) == []


def test_noiseless_steps_are_exact() -> None:
    values = [10.0] * 50 + [20.0] * 50 + [15.0] * 50

    assert detect_change_points(values) == [50, 100]


def test_non_positive_values_are_analysed_as_they_are() -> None:
    values = steps([-5.0, 5.0], [100, 100], noise=1.0)

    assert near(detect_change_points(values), [100])


def test_segments_respect_the_minimum_size_and_the_limit() -> None:
    values = steps([0.0, 30.0, 0.0, 10.0], [100, 3, 100, 100], noise=1.0)

    found = detect_change_points(values, min_size=5)
    strongest = detect_change_points(values, max_change_points=1)

    assert all(b - a >= 5 for a, b in zip([0, *found], [*found, values.size], strict=True))
    assert near(strongest, [203])


def test_a_million_points_are_segmented() -> None:
    values = steps([50.0, 60.0, 55.0], [400_000, 300_000, 300_000], noise=5.0)

    assert near(detect_change_points(values), [400_000, 700_000], margin=50)


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="penalty_factor"):
        detect_change_points([1.0] * 20, penalty_factor=0)


# --- before/after ----------------------------------------------------------------------------


def test_mann_whitney_agrees_with_scipy_including_ties() -> None:
    rng = np.random.default_rng(6)
    before = np.round(rng.lognormal(3.0, 0.3, 400))
    after = np.round(rng.lognormal(3.1, 0.3, 300))

    result = compare_samples(before, after)
    reference = stats.mannwhitneyu(after, before, alternative="two-sided", method="asymptotic")

    assert result.u_statistic == pytest.approx(reference.statistic)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-3)
    assert result.cliffs_delta == pytest.approx(2 * reference.statistic / (400 * 300) - 1)
    assert result.median_ratio == pytest.approx(np.median(after) / np.median(before), rel=0.05)


def test_cliffs_delta_of_separated_samples_is_one_and_identical_samples_zero() -> None:
    separated = compare_samples([1.0, 2.0, 3.0], [10.0, 11.0])
    identical = compare_samples([5.0, 6.0, 7.0], [5.0, 6.0, 7.0])

    assert separated.cliffs_delta == 1.0
    assert (identical.cliffs_delta, identical.z_score, identical.p_value) == (0.0, 0.0, 1.0)


def test_histogram_comparison_matches_the_raw_one_within_the_binning() -> None:
    rng = np.random.default_rng(7)
    before = rng.lognormal(3.0, 0.4, 5000)
    after = rng.lognormal(3.2, 0.4, 5000)

    raw = compare_samples(before, after)
    binned = compare_histograms(Histogram.from_values(before), Histogram.from_values(after))

    assert binned.cliffs_delta == pytest.approx(raw.cliffs_delta, abs=0.01)
    assert binned.p_value < 1e-30
    assert raw.p_value < 1e-30
    assert binned.median_before == pytest.approx(raw.median_before, rel=RELATIVE_ACCURACY)


def test_a_tail_only_regression_is_caught_by_the_quantile_test() -> None:
    rng = np.random.default_rng(8)
    before = rng.lognormal(3.0, 0.2, 20_000)
    after = rng.lognormal(3.0, 0.2, 20_000)
    after[rng.random(after.size) < 0.04] *= 5  # 4 % of requests got very slow

    p99 = compare_quantile(*sample_counts(before, after), quantile=0.99)
    ranks = compare_samples(before, after)

    assert p99.share_before == pytest.approx(0.01, abs=0.001)
    assert p99.share_after > 0.04
    assert p99.p_value < 1e-20
    assert abs(ranks.cliffs_delta) < 0.05  # the bulk did not move


def test_samples_must_be_finite_and_non_empty() -> None:
    with pytest.raises(ValueError, match="finite"):
        compare_samples([1.0, np.nan], [2.0])
    with pytest.raises(ValueError, match="at least one"):
        compare_samples([], [2.0])


def test_histogram_counts_align_the_buckets_of_both() -> None:
    values, before, after = histogram_counts(
        Histogram.from_values([10.0, 10.0, 20.0]), Histogram.from_values([20.0, 40.0])
    )

    assert list(before) == [2, 1, 0]
    assert list(after) == [0, 1, 1]
    assert np.all(np.diff(values) > 0)


# --- attribution -----------------------------------------------------------------------------


def _histograms(rng: np.random.Generator, scale: float, count: int) -> Histogram:
    return Histogram.from_values(rng.lognormal(np.log(40.0 * scale), 0.2, count))


def test_the_slow_host_explains_the_change_and_the_others_do_not() -> None:
    rng = np.random.default_rng(9)
    hosts = {
        ("host", "gpu-1"): (_histograms(rng, 1, 3000), _histograms(rng, 1, 3000)),
        ("host", "gpu-2"): (_histograms(rng, 1, 3000), _histograms(rng, 1, 3000)),
        ("host", "gpu-3"): (_histograms(rng, 1, 3000), _histograms(rng, 2, 3000)),
    }
    version = {("model_version", "v1"): (Histogram.empty(), Histogram.empty())}
    overall = [Histogram.empty(), Histogram.empty()]
    for before, after in hosts.values():
        overall = [overall[0].merge(before), overall[1].merge(after)]
    version[("model_version", "v1")] = (overall[0], overall[1])

    ranked = attribute_shift(*overall, hosts | version, quantile=0.95)

    assert (ranked[0].dimension, ranked[0].value) == ("host", "gpu-3")
    assert ranked[0].explained == pytest.approx(1.0, abs=0.1)
    assert all(abs(s.explained) < 0.2 for s in ranked[1:])
    assert ranked[0].after == pytest.approx(2 * ranked[0].before, rel=0.1)
    assert ("model_version", "v1") not in {(s.dimension, s.value) for s in ranked}  # everyone


def test_a_new_canary_version_is_compared_with_the_stable_one() -> None:
    rng = np.random.default_rng(10)
    stable_before, stable_after = _histograms(rng, 1, 9000), _histograms(rng, 1, 6300)
    canary_after = _histograms(rng, 2.5, 2700)
    slices = {
        ("model_version", "v1"): (stable_before, stable_after),
        ("model_version", "v2"): (Histogram.empty(), canary_after),
        ("canary", "true"): (Histogram.empty(), canary_after),
    }

    ranked = attribute_shift(
        stable_before,
        stable_after.merge(canary_after),
        slices,
        quantile=0.95,
        preferred_dimensions=("model_version",),
    )

    assert (ranked[0].dimension, ranked[0].value) == ("model_version", "v2")
    assert (ranked[1].dimension, ranked[1].value) == ("canary", "true")
    assert ranked[0].explained == pytest.approx(1.0, abs=0.1)
    assert ranked[0].share_after == pytest.approx(0.3)
    assert ranked[0].before is None


# --- events ----------------------------------------------------------------------------------


def test_the_nearest_change_event_before_the_onset_within_the_horizon() -> None:
    events = pd.DataFrame(
        {
            "timestamp": [
                T0 - dt.timedelta(hours=5),
                T0 - dt.timedelta(minutes=30),
                T0 - dt.timedelta(minutes=2),
                T0 + dt.timedelta(minutes=10),
            ],
            "kind": ["deploy", "config", "incident", "deploy"],
        },
        index=[11, 12, 13, 14],
    )
    hour = dt.timedelta(hours=1)

    assert nearest_event(events, T0, horizon=hour) == 12  # the incident is not a change
    assert nearest_event(events, T0, horizon=dt.timedelta(minutes=10)) is None
    assert (
        nearest_event(
            events, T0 + dt.timedelta(minutes=5), horizon=hour, tolerance=dt.timedelta(minutes=4)
        )
        == 12
    )
    assert (
        nearest_event(
            events, T0 + dt.timedelta(minutes=5), horizon=hour, tolerance=dt.timedelta(minutes=5)
        )
        == 14
    )
    assert nearest_event(events.iloc[:0], T0, horizon=hour) is None
