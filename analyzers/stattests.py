"""Statistical tests for data drift, registered by name with their metadata.

Each test compares a reference sample with a current sample of one feature and returns a frozen
`StatTestResult`: the statistic, the p-value where the test has one, the threshold and the
verdict. The definitions follow Evidently 0.7's stattest modules exactly, so that verdicts and
scores agree with its DataDriftPreset on the same data:

- ``ks``: two-sample Kolmogorov-Smirnov (scipy.stats.ks_2samp); drift when p <= threshold.
- ``chisquare``: Pearson chi-square of current counts against reference counts scaled to the
  current size, over the union of categories; drift when p < threshold.
- ``z``: two-proportion Z-test of the share of values other than the smallest category, for
  binary features; drift when p < threshold.
- ``wasserstein``: first Wasserstein distance divided by the reference standard deviation
  (population, at least 0.001); drift when >= threshold.
- ``jensenshannon``: Jensen-Shannon distance (natural logarithm) of binned shares.
- ``psi``: population stability index of binned shares, empty bins filled with a small share.
- ``hellinger``: Hellinger distance of category shares or of Sturges-binned densities.

Binning for PSI and Jensen-Shannon (Evidently's ``get_binned_data``): a numeric feature with more
than 20 distinct reference values gets Sturges bins over the range of both samples together;
anything else is counted per distinct value. Inputs are cleaned by the caller: no nulls, NaN or
infinities.

Reference first, current second, options keyword-only; no I/O, deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats
from scipy.spatial import distance

Kind = Literal["numeric", "categorical"]
KINDS: tuple[Kind, ...] = ("numeric", "categorical")

#: Numeric features with more distinct reference values than this are binned, not counted.
MAX_COUNTED_VALUES = 20
#: Smallest reference standard deviation that normalises the Wasserstein distance.
MIN_WASSERSTEIN_NORM = 0.001
#: Share put into empty PSI bins (or a millionth of the smallest share when that is smaller).
PSI_EMPTY_SHARE = 0.0001

Array = npt.NDArray[Any]


@dataclass(frozen=True)
class StatTestResult:
    """The outcome of one test on one feature.

    `score` is what the verdict compares with the threshold: the p-value of a hypothesis test,
    the statistic of a distance (Evidently calls it the drift score).
    """

    test: str
    statistic: float
    p_value: float | None
    threshold: float
    drifted: bool

    @property
    def score(self) -> float:
        return self.statistic if self.p_value is None else self.p_value


TestFunc = Callable[..., StatTestResult]


@dataclass(frozen=True)
class StatTest:
    """A registered test: its name (the key used in the API, CLI and stored results), what it
    applies to, its default threshold and whether that threshold bounds a p-value."""

    name: str
    display_name: str
    kinds: frozenset[str]
    default_threshold: float
    is_p_value: bool
    func: TestFunc

    def __call__(
        self, reference: Array, current: Array, *, kind: Kind, threshold: float | None = None
    ) -> StatTestResult:
        """Run the test on cleaned samples (no nulls), with the default threshold unless given."""
        if kind not in self.kinds:
            raise ValueError(f"test {self.name!r} does not apply to {kind} features")
        if reference.size == 0 or current.size == 0:
            raise ValueError("both samples must hold at least one value")
        limit = self.default_threshold if threshold is None else float(threshold)
        return self.func(reference, current, kind=kind, threshold=limit)


_REGISTRY: dict[str, StatTest] = {}


def register_stattest(
    name: str,
    *,
    display_name: str,
    kinds: tuple[str, ...],
    default_threshold: float,
    is_p_value: bool,
) -> Callable[[TestFunc], TestFunc]:
    """Register a test function under `name` with its metadata."""

    def decorate(func: TestFunc) -> TestFunc:
        _REGISTRY[name] = StatTest(
            name, display_name, frozenset(kinds), default_threshold, is_p_value, func
        )
        return func

    return decorate


def get_stattest(name: str) -> StatTest:
    """The registered test called `name`; ValueError naming the known ones otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise ValueError(f"unknown drift test {name!r}: use one of {known}") from None


def list_stattests() -> list[StatTest]:
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]


def verdict(test: StatTest | str, score: float, threshold: float) -> bool:
    """Whether `score` means drift for `test` (Evidently's comparisons: KS p <= threshold, other
    p-values p < threshold, distances >= threshold). NaN never means drift."""
    spec = get_stattest(test) if isinstance(test, str) else test
    if math.isnan(score):
        return False
    if spec.name == "ks":
        return score <= threshold
    return score < threshold if spec.is_p_value else score >= threshold


def _result(name: str, statistic: float, p_value: float | None, threshold: float) -> StatTestResult:
    score = statistic if p_value is None else p_value
    return StatTestResult(
        test=name,
        statistic=float(statistic),
        p_value=None if p_value is None else float(p_value),
        threshold=threshold,
        drifted=verdict(name, float(score), threshold),
    )


# --- counting helpers, shared with the profile-based tests ----------------------------------


def category_counts(reference: Array, current: Array) -> tuple[list[Any], Array, Array]:
    """Counts of each distinct value of either sample: (values, reference counts, current
    counts), values in first-seen order."""
    return align_counts(
        pd.Series(reference).value_counts(sort=False), pd.Series(current).value_counts(sort=False)
    )


def align_counts(ref_counts: pd.Series, cur_counts: pd.Series) -> tuple[list[Any], Array, Array]:
    """Two value counts (value -> count) over the union of their values."""
    keys = ref_counts.index.union(cur_counts.index, sort=False)
    return (
        list(keys),
        ref_counts.reindex(keys, fill_value=0).to_numpy(np.float64),
        cur_counts.reindex(keys, fill_value=0).to_numpy(np.float64),
    )


def sturges_bins(low: float, high: float, num_values: int) -> tuple[int, tuple[float, float]]:
    """Number of bins and range of numpy's ``histogram_bin_edges(values, "sturges")`` for
    values spanning [low, high]."""
    if low == high:
        return 1, (low - 0.5, high + 0.5)
    width = (high - low) / (np.log2(num_values) + 1.0)
    return int(np.ceil((high - low) / width)), (low, high)


def binned_counts(reference: Array, current: Array, *, kind: Kind) -> tuple[Array, Array]:
    """Reference and current counts per bin as Evidently's ``get_binned_data`` bins them."""
    if kind == "numeric" and count_distinct(reference, MAX_COUNTED_VALUES) > MAX_COUNTED_VALUES:
        low = float(min(reference.min(), current.min()))
        high = float(max(reference.max(), current.max()))
        num_bins, value_range = sturges_bins(low, high, reference.size + current.size)
        ref_counts = np.histogram(reference, num_bins, value_range)[0].astype(np.float64)
        cur_counts = np.histogram(current, num_bins, value_range)[0].astype(np.float64)
        return ref_counts, cur_counts
    _, ref_counts, cur_counts = category_counts(reference, current)
    return ref_counts, cur_counts


def count_distinct(values: Array, limit: int) -> int:
    """Distinct values, exactly up to `limit`; some number above `limit` beyond it (cheap for
    long continuous samples: a prefix usually settles it)."""
    head = pd.unique(values[: 16 * (limit + 1)])
    if head.size > limit:
        return int(head.size)
    return int(pd.unique(values).size)


def fill_empty_shares(shares: Array) -> Array:
    """Evidently's zero filling for PSI: empty bins get 0.0001, or a millionth of the smallest
    non-empty share when that is at most 0.0001."""
    filled = shares.copy()
    smallest = filled[filled != 0].min()
    filled[filled == 0] = smallest / 10**6 if smallest <= PSI_EMPTY_SHARE else PSI_EMPTY_SHARE
    return filled


def psi_from_counts(ref_counts: Array, cur_counts: Array, threshold: float) -> StatTestResult:
    """PSI of two count vectors over the same bins."""
    ref_shares = fill_empty_shares(ref_counts / ref_counts.sum())
    cur_shares = fill_empty_shares(cur_counts / cur_counts.sum())
    value = np.sum((ref_shares - cur_shares) * np.log(ref_shares / cur_shares))
    return _result("psi", float(value), None, threshold)


def jensenshannon_from_counts(
    ref_counts: Array, cur_counts: Array, threshold: float
) -> StatTestResult:
    """Jensen-Shannon distance (natural log) of two count vectors over the same bins."""
    value = distance.jensenshannon(ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum())
    return _result("jensenshannon", float(value), None, threshold)


def chisquare_from_counts(ref_counts: Array, cur_counts: Array, threshold: float) -> StatTestResult:
    """Chi-square of current counts against reference counts scaled to the current total."""
    expected = ref_counts * (cur_counts.sum() / ref_counts.sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic, p_value = stats.chisquare(cur_counts, expected)
    return _result("chisquare", float(statistic), float(p_value), threshold)


def z_from_counts(
    keys: list[Any], ref_counts: Array, cur_counts: Array, threshold: float
) -> StatTestResult:
    """Two-proportion Z-test of the share of values other than the smallest key."""
    present_ref, present_cur = ref_counts > 0, cur_counts > 0
    if present_ref.sum() == 1 and present_cur.sum() == 1 and (present_ref == present_cur).all():
        return _result("z", 0.0, 1.0, threshold)  # one and the same value on both sides
    first = sorted(range(len(keys)), key=lambda i: _sort_key(keys[i]))[0]
    n1, n2 = ref_counts.sum(), cur_counts.sum()
    p1 = (n1 - ref_counts[first]) / n1
    p2 = (n2 - cur_counts[first]) / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    p_value = 2 * (1 - stats.norm.cdf(np.abs(z)))
    return _result("z", float(z), float(p_value), threshold)


def _sort_key(value: Any) -> tuple[str, Any]:
    return (type(value).__name__, value) if not isinstance(value, int | float) else ("", value)


def hellinger_from_shares(ref_shares: Array, cur_shares: Array, threshold: float) -> StatTestResult:
    """Hellinger distance from the shares (or density times bin width) of the same bins."""
    coefficient = float(np.clip(np.sum(np.sqrt(ref_shares * cur_shares)), 0, 1))
    return _result("hellinger", math.sqrt(1 - coefficient), None, threshold)


def run_on_counts(
    name: str, keys: list[Any], ref_counts: Array, cur_counts: Array, threshold: float | None
) -> StatTestResult:
    """Run a test of categorical data on per-value counts of both sides (same keys)."""
    spec = get_stattest(name)
    if "categorical" not in spec.kinds:
        raise ValueError(f"test {name!r} does not apply to categorical features")
    limit = spec.default_threshold if threshold is None else float(threshold)
    if name == "chisquare":
        return chisquare_from_counts(ref_counts, cur_counts, limit)
    if name == "z":
        return z_from_counts(keys, ref_counts, cur_counts, limit)
    if name == "jensenshannon":
        return jensenshannon_from_counts(ref_counts, cur_counts, limit)
    if name == "psi":
        return psi_from_counts(ref_counts, cur_counts, limit)
    return hellinger_from_shares(
        ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum(), limit
    )


def sorted_copy(values: Array) -> Array:
    """`values` in ascending order; the array itself when it already is."""
    if values.size < 2 or bool(np.all(values[:-1] <= values[1:])):
        return values
    return np.sort(values)


def wasserstein_from_sorted(ref_sorted: Array, cur_sorted: Array) -> float:
    """First Wasserstein distance of two sorted samples: the area between their quantile
    functions, equal to scipy.stats.wasserstein_distance.

    The quantile function of n sorted values steps at ranks i / n; on a common integer scale
    n m the steps of both samples are the multiples of m and of n. Between two consecutive
    steps both quantile functions are constant, so the integral is a sum over the merged
    steps, found by sorting integers (no comparison sort of the values beyond the two given).
    """
    n, m = ref_sorted.size, cur_sorted.size
    if n == m:  # both quantile functions step at the same ranks
        return float(np.mean(np.abs(ref_sorted - cur_sorted)))
    steps = np.concatenate(
        [np.arange(1, n + 1, dtype=np.int64) * m, np.arange(1, m + 1, dtype=np.int64) * n]
    )
    steps.sort()
    steps = steps[np.concatenate([[True], steps[1:] != steps[:-1]])]
    widths = np.diff(steps, prepend=0) / (n * m)
    ref_values = ref_sorted[(steps + m - 1) // m - 1]
    cur_values = cur_sorted[(steps + n - 1) // n - 1]
    return float(np.sum(np.abs(ref_values - cur_values) * widths))


# --- the registered tests ---------------------------------------------------------------------


@register_stattest(
    "ks", display_name="K-S p_value", kinds=("numeric",), default_threshold=0.05, is_p_value=True
)
def ks_test(reference: Array, current: Array, *, kind: Kind, threshold: float) -> StatTestResult:
    """Two-sample Kolmogorov-Smirnov test; the statistic is the largest CDF gap."""
    outcome = stats.ks_2samp(reference, current)
    return _result("ks", float(outcome.statistic), float(outcome.pvalue), threshold)


@register_stattest(
    "chisquare",
    display_name="chi-square p_value",
    kinds=("categorical", "numeric"),
    default_threshold=0.05,
    is_p_value=True,
)
def chisquare_test(
    reference: Array, current: Array, *, kind: Kind, threshold: float
) -> StatTestResult:
    """Pearson chi-square over the categories of both samples."""
    _, ref_counts, cur_counts = category_counts(reference, current)
    return chisquare_from_counts(ref_counts, cur_counts, threshold)


@register_stattest(
    "z",
    display_name="Z-test p_value",
    kinds=("categorical", "numeric"),
    default_threshold=0.05,
    is_p_value=True,
)
def z_test(reference: Array, current: Array, *, kind: Kind, threshold: float) -> StatTestResult:
    """Two-proportion Z-test for binary features."""
    keys, ref_counts, cur_counts = category_counts(reference, current)
    return z_from_counts(keys, ref_counts, cur_counts, threshold)


@register_stattest(
    "wasserstein",
    display_name="Wasserstein distance (normed)",
    kinds=("numeric",),
    default_threshold=0.1,
    is_p_value=False,
)
def wasserstein_test(
    reference: Array, current: Array, *, kind: Kind, threshold: float
) -> StatTestResult:
    """Wasserstein distance in units of the reference standard deviation."""
    norm = max(float(np.std(reference)), MIN_WASSERSTEIN_NORM)
    value = wasserstein_from_sorted(sorted_copy(reference), sorted_copy(current)) / norm
    return _result("wasserstein", value, None, threshold)


@register_stattest(
    "jensenshannon",
    display_name="Jensen-Shannon distance",
    kinds=("categorical", "numeric"),
    default_threshold=0.1,
    is_p_value=False,
)
def jensenshannon_test(
    reference: Array, current: Array, *, kind: Kind, threshold: float
) -> StatTestResult:
    """Jensen-Shannon distance of the binned shares."""
    ref_counts, cur_counts = binned_counts(reference, current, kind=kind)
    return jensenshannon_from_counts(ref_counts, cur_counts, threshold)


@register_stattest(
    "psi",
    display_name="PSI",
    kinds=("categorical", "numeric"),
    default_threshold=0.1,
    is_p_value=False,
)
def psi_test(reference: Array, current: Array, *, kind: Kind, threshold: float) -> StatTestResult:
    """Population stability index of the binned shares."""
    ref_counts, cur_counts = binned_counts(reference, current, kind=kind)
    return psi_from_counts(ref_counts, cur_counts, threshold)


@register_stattest(
    "hellinger",
    display_name="Hellinger distance",
    kinds=("categorical", "numeric"),
    default_threshold=0.1,
    is_p_value=False,
)
def hellinger_test(
    reference: Array, current: Array, *, kind: Kind, threshold: float
) -> StatTestResult:
    """Hellinger distance: of category shares, or of densities over Sturges bins of the
    distinct values (Evidently's definition)."""
    if kind == "categorical":
        _, ref_counts, cur_counts = category_counts(reference, current)
        return hellinger_from_shares(
            ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum(), threshold
        )
    distinct = np.unique(np.concatenate([np.unique(reference), np.unique(current)]))
    num_bins, value_range = sturges_bins(float(distinct[0]), float(distinct[-1]), distinct.size)
    return hellinger_from_shares(
        *hellinger_bin_shares(
            np.histogram(reference, num_bins, value_range)[0],
            np.histogram(current, num_bins, value_range)[0],
        ),
        threshold,
    )


def hellinger_bin_shares(ref_counts: Array, cur_counts: Array) -> tuple[Array, Array]:
    """Per-bin shares of two histograms over the same equal-width bins (density times width)."""
    return ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum()
