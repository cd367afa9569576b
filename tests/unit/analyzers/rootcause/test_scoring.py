"""analyzers.rootcause.scoring: confidence intervals of percentiles and regressions beyond noise."""

from __future__ import annotations

import numpy as np

from analyzers.histograms import Histogram
from analyzers.rootcause.scoring import quantile_interval, quantile_rose


def _lognormal(n: int, *, seed: int, scale: float = 40.0) -> Histogram:
    rng = np.random.default_rng(seed)
    return Histogram.from_values(scale * rng.lognormal(0.0, 0.4, n))


def _with_stalls(n: int, *, seed: int, share: float) -> Histogram:
    """Latency with rare 3-9x stalls (GC pauses, cold caches): a p99 on the edge of them."""
    rng = np.random.default_rng(seed)
    values = 40.0 * rng.lognormal(0.0, 0.3, n)
    stalls = rng.random(n) < share
    values[stalls] *= rng.uniform(3, 9, int(stalls.sum()))
    return Histogram.from_values(values)


def test_the_interval_holds_the_true_quantile_and_narrows_with_more_data() -> None:
    true_p95 = 40.0 * float(np.exp(0.4 * 1.6449))

    small = quantile_interval(_lognormal(300, seed=1), 0.95)
    large = quantile_interval(_lognormal(30_000, seed=1), 0.95)

    assert small[0] < true_p95 < small[1]
    assert large[0] < true_p95 < large[1]
    assert large[1] - large[0] < (small[1] - small[0]) / 4


def test_an_empty_sample_has_no_interval() -> None:
    low, high = quantile_interval(Histogram.empty(), 0.95)

    assert np.isnan(low)
    assert np.isnan(high)


def test_a_doubled_p95_rose_and_the_same_distribution_did_not() -> None:
    baseline = _lognormal(2000, seed=2)
    same = _lognormal(2000, seed=3)
    doubled = _lognormal(2000, seed=4, scale=80.0)

    assert quantile_rose(doubled, baseline, 0.95)
    assert not quantile_rose(same, baseline, 0.95)


def test_a_p99_on_the_edge_of_rare_stalls_is_noise_not_a_regression() -> None:
    # 1 % of requests stall in both periods: the p99 sits where the stalls begin, and a
    # little more or less of them moves it by half; the interval says so.
    baseline = _with_stalls(20_000, seed=6, share=0.009)
    window = _with_stalls(20_000, seed=51, share=0.0105)

    window_p99, baseline_p99 = window.quantiles([0.99])[0], baseline.quantiles([0.99])[0]
    assert window_p99 is not None
    assert baseline_p99 is not None
    assert window_p99 > 1.2 * baseline_p99
    assert not quantile_rose(window, baseline, 0.99)
