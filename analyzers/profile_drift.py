"""The drift tests of `analyzers.stattests`, computed from two feature profiles.

Count-based tests (chi-square, Z, and PSI, Jensen-Shannon and Hellinger of categorical or
low-cardinality numeric features) use the profiles' exact counts and equal the raw computation.
Tests of continuous numeric features read the KLL quantile sketches:

- ``wasserstein``: the distance between the two sketches' weighted samples (the retained items
  with their weights, which sum to the counts), divided by the exact reference standard
  deviation;
- ``ks``: the largest gap between the two weighted-sample CDFs; the p-value from the asymptotic
  Kolmogorov distribution for n m / (n + m), as scipy's ks_2samp uses it for large samples;
- ``psi``, ``jensenshannon``, ``hellinger``: bin counts as differences of sketch CDFs at the same
  Sturges bin edges the raw test uses (the range is exact: minimum and maximum are tracked).

The sketches' rank error (about 0.3 %) bounds the error of these statistics; the measured
agreement with the raw tests is stated in the README and held by tests/unit/analyzers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

from analyzers import stattests as st
from analyzers.feature_profiles import FeatureProfile

Array = npt.NDArray[Any]


def distinct_union(reference: FeatureProfile, current: FeatureProfile) -> int | None:
    """Distinct non-null values of both profiles together, or None when more than the
    profiles count exactly."""
    ref_counts, cur_counts = reference.category_counts(), current.category_counts()
    if ref_counts is None or cur_counts is None:
        return None
    return len(set(ref_counts) | set(cur_counts))


def aligned_counts(
    reference: FeatureProfile, current: FeatureProfile
) -> tuple[list[Any], Array, Array] | None:
    """(values, reference counts, current counts) over the union of values, when both
    profiles count every value."""
    ref_counts, cur_counts = reference.category_counts(), current.category_counts()
    if ref_counts is None or cur_counts is None:
        return None
    keys = list(dict.fromkeys([*ref_counts, *cur_counts]))
    return (
        keys,
        np.array([ref_counts.get(k, 0.0) for k in keys]),
        np.array([cur_counts.get(k, 0.0) for k in keys]),
    )


def run_profile_test(
    name: str,
    reference: FeatureProfile,
    current: FeatureProfile,
    *,
    kind: st.Kind,
    threshold: float | None = None,
) -> st.StatTestResult:
    """Run the registered test `name` on two profiles of one feature."""
    spec = st.get_stattest(name)
    if kind not in spec.kinds:
        raise ValueError(f"test {name!r} does not apply to {kind} features")
    limit = spec.default_threshold if threshold is None else float(threshold)
    if reference.num_values == 0 or current.num_values == 0:
        raise ValueError("both profiles must hold at least one value")
    if kind == "numeric" and not (reference.is_numeric and current.is_numeric):
        raise ValueError("a numeric test needs numbers on both sides")
    return _TESTS[name](reference, current, kind, limit)


def _counts_or_fail(
    reference: FeatureProfile, current: FeatureProfile
) -> tuple[list[Any], Array, Array]:
    aligned = aligned_counts(reference, current)
    if aligned is None:
        raise ValueError("the profiles do not count every value of this feature")
    return aligned


def _chisquare(
    ref: FeatureProfile, cur: FeatureProfile, kind: str, limit: float
) -> st.StatTestResult:
    _, ref_counts, cur_counts = _counts_or_fail(ref, cur)
    return st.chisquare_from_counts(ref_counts, cur_counts, limit)


def _z(ref: FeatureProfile, cur: FeatureProfile, kind: str, limit: float) -> st.StatTestResult:
    keys, ref_counts, cur_counts = _counts_or_fail(ref, cur)
    return st.z_from_counts(keys, ref_counts, cur_counts, limit)


def _binned(ref: FeatureProfile, cur: FeatureProfile, kind: str) -> tuple[Array, Array]:
    ref_distinct = ref.count_distinct()
    if kind == "numeric" and (ref_distinct is None or ref_distinct > st.MAX_COUNTED_VALUES):
        low, high = min(ref.minimum, cur.minimum), max(ref.maximum, cur.maximum)
        num_bins, value_range = st.sturges_bins(low, high, ref.num_values + cur.num_values)
        edges = np.linspace(value_range[0], value_range[1], num_bins + 1)
        return sketch_histogram(ref, edges), sketch_histogram(cur, edges)
    _, ref_counts, cur_counts = _counts_or_fail(ref, cur)
    return ref_counts, cur_counts


def sketch_histogram(profile: FeatureProfile, edges: Array) -> Array:
    """Counts per bin of numpy-style bins (the last one closed) from the quantile sketch; an
    exact value count is used instead where the profile has one."""
    if profile.number_counts is not None:
        values = np.array(list(profile.number_counts), dtype=np.float64)
        weights = np.array(list(profile.number_counts.values()), dtype=np.float64)
        return np.histogram(values, edges, weights=weights)[0].astype(np.float64)
    below = profile.cdf(edges[1:-1])
    cumulative = np.concatenate([[0.0], below, [1.0]])
    return np.diff(cumulative) * profile.num_numbers


def _psi(ref: FeatureProfile, cur: FeatureProfile, kind: str, limit: float) -> st.StatTestResult:
    return st.psi_from_counts(*_binned(ref, cur, kind), limit)


def _jensenshannon(
    ref: FeatureProfile, cur: FeatureProfile, kind: str, limit: float
) -> st.StatTestResult:
    return st.jensenshannon_from_counts(*_binned(ref, cur, kind), limit)


def _hellinger(
    ref: FeatureProfile, cur: FeatureProfile, kind: str, limit: float
) -> st.StatTestResult:
    if kind == "categorical":
        _, ref_counts, cur_counts = _counts_or_fail(ref, cur)
        return st.hellinger_from_shares(
            ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum(), limit
        )
    aligned = aligned_counts(ref, cur)
    # Sturges bins over the distinct values: counted exactly, or (continuous) one per value.
    num_distinct = len(aligned[0]) if aligned else ref.num_values + cur.num_values
    low, high = min(ref.minimum, cur.minimum), max(ref.maximum, cur.maximum)
    num_bins, value_range = st.sturges_bins(low, high, num_distinct)
    edges = np.linspace(value_range[0], value_range[1], num_bins + 1)
    return st.hellinger_from_shares(
        *st.hellinger_bin_shares(sketch_histogram(ref, edges), sketch_histogram(cur, edges)),
        limit,
    )


def _wasserstein(
    ref: FeatureProfile, cur: FeatureProfile, kind: str, limit: float
) -> st.StatTestResult:
    norm = max(ref.std, st.MIN_WASSERSTEIN_NORM)
    (ref_values, ref_weights), (cur_values, cur_weights) = (
        ref.weighted_numbers(),
        cur.weighted_numbers(),
    )
    distance = stats.wasserstein_distance(ref_values, cur_values, ref_weights, cur_weights)
    value = float(distance) / norm
    return st.StatTestResult(
        "wasserstein", value, None, limit, st.verdict("wasserstein", value, limit)
    )


def _ks(ref: FeatureProfile, cur: FeatureProfile, kind: str, limit: float) -> st.StatTestResult:
    ref_values, ref_weights = ref.weighted_numbers()
    cur_values, cur_weights = cur.weighted_numbers()
    points = np.union1d(ref_values, cur_values)
    gap = _weighted_cdf(ref_values, ref_weights, points) - _weighted_cdf(
        cur_values, cur_weights, points
    )
    statistic = float(np.max(np.abs(gap)))
    m, n = sorted([float(ref.num_numbers), float(cur.num_numbers)], reverse=True)
    p_value = float(stats.kstwo.sf(statistic, np.round(m * n / (m + n))))
    return st.StatTestResult("ks", statistic, p_value, limit, st.verdict("ks", p_value, limit))


def _weighted_cdf(values: Array, weights: Array, points: Array) -> Array:
    """Share of the weight at or below each point; `values` sorted."""
    cumulative = np.concatenate([[0.0], np.cumsum(weights)]) / weights.sum()
    return cumulative[np.searchsorted(values, points, side="right")]


_TESTS = {
    "chisquare": _chisquare,
    "z": _z,
    "psi": _psi,
    "jensenshannon": _jensenshannon,
    "hellinger": _hellinger,
    "wasserstein": _wasserstein,
    "ks": _ks,
}
