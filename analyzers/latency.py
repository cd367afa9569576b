"""Latency regressions: change points in percentile series, before/after tests, attribution.

Change points. Binary segmentation (Scott and Knott 1974; Vostrikova 1981) with the squared-
error cost of a change in mean, evaluated for every candidate split of a segment at once from
cumulative sums, so one pass over a segment is a handful of numpy operations and a year of
minute buckets (525k points) takes well under a second. A change point is kept when it lowers the
cost by more than ``penalty_factor * sigma^2 * log(n)``: the leading term of the modified BIC
of Zhang and Siegmund (2007), the default of R's changepoint package, with sigma the noise
scale. The defaults are chosen for series nobody tuned them on:

- Latency is skewed and its noise grows with its level, so positive series are analysed on
  the log scale, where a regression is a ratio (x1.5) wherever it happens. That is a latency
  assumption: on the raw values of the Turing Change Point Dataset (TCPD, 31 series of other
  kinds), where annotators looked at linear plots, it costs F1 0.03 (0.707 against 0.736 on
  the standardised values); pass ``log_scale=False`` for series whose noise does not grow with
  the level.
- Spikes are not level changes. Values further than ``clip_sigmas`` noise scales from a
  running median are pulled back to that bound before segmenting (winsorising, the M-estimation
  idea behind robust change point detection of Fearnhead and Rigaill 2019), so outliers and
  heavy tails do not create segments.
- The noise scale is estimated robustly and from the data's own variation around its levels:
  it starts from the median absolute deviation of the whole series (an upper bound, since the
  shifts are part of it), segments, re-estimates from the residuals around each segment's
  median, and segments again; it never falls below the scale of the first differences (what
  remains when every level is removed). Slow wander, seasonality and trends are variation
  around the levels, so they raise the bar for a change instead of being cut into steps. On
  short smooth series (TCPD's GDP, population and emission series) this finds fewer changes
  than annotators mark; a finite-sample correction of the autocorrelation and capping the
  scale at the series' own spread were tried and traded those for false alarms on wander.
- A level that changes and changes back (a regression rolled back) splits a long series badly
  in one cut, so the tree of splits is grown one level past a split below the penalty, pruned
  with the same penalty, and change points that do not pay for themselves next to their final
  neighbours are dropped (see `binary_segmentation`): both ends of 20 minutes at 1.3x in ten
  hours of minute buckets with 10 % noise are found in 71 % of draws instead of 4 %.
- Segments have at least ``min_size`` points; NaN (an empty bucket) is skipped, and a change
  point is reported at the first observed index of its new segment. A smaller minimum for short
  series raised false alarms in 12 to 45 points of noise without finding steps more often.

Measured on TCPD's 31 univariate series that ship with the dataset, standardised and scored as
TCPDBench does (F1 with a 5-point margin, segmentation covering): F1 0.736, cover 0.668, against
0.714 and 0.671 for TCPDBench's default binary segmentation and 0.663 and 0.568 for reporting
nothing (benchmarks/changepoints.py, benchmarks/README.md).

Before/after. The Mann-Whitney U test computed from counts over shared values (raw latencies,
or the buckets of the rollup histograms): exact for binned data, with the tie correction,
and linear in the number of distinct values, so a million requests cost nothing. Effect sizes:
the ratio of medians and Cliff's delta (the rank-biserial correlation), which is P(after >
before) - P(after < before).

Attribution. For each slice (a version, a host, a tag value), the counterfactual percentile
of the after window had that slice kept its own before distribution (a slice new in the after
window, such as a canary, is given the before distribution of the whole model): the share of
the overall change that disappears is what the slice explains. And the nearest deploy, config,
scale, canary or rollback event before the onset, within a horizon.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from analyzers.histograms import ZERO_BIN, Histogram, bin_values

Array = npt.NDArray[np.float64]

#: Penalty per change point in units of sigma^2 * log(n) (modified BIC).
PENALTY_FACTOR = 3.0
#: Fewest points in a segment.
MIN_SIZE = 5
#: Values further than this many noise scales from the running median are clipped.
CLIP_SIGMAS = 3.0
#: Noise re-estimation rounds after the first segmentation.
NUM_REFINEMENTS = 2
#: How many levels below a split that does not pay for its penalty the tree is still grown
#: (1: its two halves are split once more, enough to see a level that changes and changes back).
LOOKAHEAD = 1
#: Highest lag-1 autocorrelation of the noise the long-run scale assumes.
MAX_AUTOCORRELATION = 0.99
#: MAD to standard deviation for normal data.
MAD_TO_SIGMA = 1.482602218505602
#: Event kinds that change how a model is served, in the order a person would suspect them.
CHANGE_EVENT_KINDS = ("deploy", "rollback", "canary", "config", "scale")


# --- change points ---------------------------------------------------------------------------


def detect_change_points(
    values: Sequence[float] | npt.ArrayLike,
    *,
    penalty_factor: float = PENALTY_FACTOR,
    min_size: int = MIN_SIZE,
    log_scale: bool | None = None,
    clip_sigmas: float | None = CLIP_SIGMAS,
    max_change_points: int | None = None,
) -> list[int]:
    """Indices where a new segment starts (0 and len(values) excluded).

    Args:
        values: the series, oldest first; NaN and infinities mark missing points.
        penalty_factor: cost decrease needed per change point, in sigma^2 * log(n).
        min_size: fewest observed points in a segment.
        log_scale: analyse log(values); None (default) does so when every value is positive.
        clip_sigmas: clip values this many noise scales from a running median; None keeps them.
        max_change_points: keep at most this many, the strongest; None for no limit.

    Returns:
        Sorted indices into `values`; each is the first observed point of a new segment.
    """
    if penalty_factor <= 0 or min_size < 1:
        raise ValueError("penalty_factor must be positive and min_size at least 1")
    array = np.asarray(values, dtype=np.float64).ravel()
    observed = np.flatnonzero(np.isfinite(array))
    y = array[observed]
    if y.size < 2 * min_size:
        return []
    if log_scale or (log_scale is None and bool(np.all(y > 0))):
        y = np.log(y)
    found = _segment_robustly(y, penalty_factor, min_size, clip_sigmas, max_change_points)
    return [int(observed[i]) for i in found]


def _segment_robustly(
    y: Array,
    penalty_factor: float,
    min_size: int,
    clip_sigmas: float | None,
    max_change_points: int | None,
) -> list[int]:
    floor = difference_scale(y)
    sigma = max(robust_scale(y), floor)
    if sigma <= 0:
        return []  # constant
    if clip_sigmas is not None:
        y = clip_outliers(y, floor if floor > 0 else sigma, clip_sigmas, min_size)
    log_n = math.log(y.size)
    found: list[int] | None = None
    for _ in range(NUM_REFINEMENTS + 1):
        penalty = penalty_factor * sigma**2 * log_n
        latest = binary_segmentation(y, penalty, min_size=min_size, limit=max_change_points)
        if latest == found:
            break
        found = latest
        sigma = long_run_scale(residuals(y, found))
        if sigma <= 0:
            break  # noiseless steps: the levels are exact
    return found or []


def binary_segmentation(
    y: Array, penalty: float, *, min_size: int = MIN_SIZE, limit: int | None = None
) -> list[int]:
    """Change points of the squared-error mean-change cost by binary segmentation.

    The tree of splits is grown as in binary segmentation, and a split that does not lower the
    cost by more than the penalty is still looked into `LOOKAHEAD` levels deeper: a level that
    changes and changes back (a regression rolled back, a bump) gives the best single split of
    the enclosing segment a small gain although its two change points together are clear, the
    case circular binary segmentation tests for (Olshen et al. 2004). The tree is then pruned
    with the same penalty, bottom-up as in cost-complexity pruning (Breiman et al. 1984): a split
    is kept when its gain and the gains of its kept descendants exceed the penalty of all of
    them. Last, backward elimination drops change points, the weakest first, until each lowers
    the cost of its two neighbouring segments by more than the penalty (and at most `limit`
    remain), so every change point reported pays for itself given the others.

    Args:
        y: the series (no missing values).
        penalty: cost decrease needed per change point.
        min_size: fewest points in a segment.
        limit: most change points; None for no limit.

    Returns:
        Sorted start indices of the new segments.
    """
    sums = np.concatenate(([0.0], np.cumsum(y - y.mean())))
    gains: list[float] = []
    splits: list[int] = []
    parents: list[int] = []
    children: list[list[int]] = []
    stack = [(0, y.size, 0, -1)]  # segment start, end, splits below the penalty above it, parent
    while stack:
        start, end, shortfalls, parent = stack.pop()
        best = _best_split(sums, start, end, min_size)
        if best is None:
            continue
        gain, split = best
        node = len(gains)
        gains.append(gain)
        splits.append(split)
        parents.append(parent)
        children.append([])
        if parent >= 0:
            children[parent].append(node)
        shortfalls = 0 if gain > penalty else shortfalls + 1
        if shortfalls <= LOOKAHEAD:
            stack.append((split, end, shortfalls, node))
            stack.append((start, split, shortfalls, node))
    if not gains:
        return []
    # Children are created after their parent: one pass backwards sums the kept subtrees.
    value = [gain - penalty for gain in gains]
    for node in range(len(gains) - 1, 0, -1):
        if value[node] > 0:
            value[parents[node]] += value[node]
    kept = [splits[0]] if value[0] > 0 else []
    pending = [0] if value[0] > 0 else []
    while pending:
        for child in children[pending.pop()]:
            if value[child] > 0:
                kept.append(splits[child])
                pending.append(child)
    return _eliminate(sums, sorted(kept), penalty, limit)


def _eliminate(
    sums: Array, change_points: list[int], penalty: float, limit: int | None
) -> list[int]:
    """Drop the change point whose two segments, merged, cost least more than split, until
    each remaining one lowers the cost by more than the penalty and at most `limit` remain (a
    split kept for a strong one below it can lose its reason once its neighbours are known)."""
    points = np.asarray(change_points, dtype=np.int64)
    while points.size:
        bounds = np.concatenate(([0], points, [sums.size - 1]))
        start, split, end = bounds[:-2], bounds[1:-1], bounds[2:]
        left = (sums[split] - sums[start]) / (split - start)
        right = (sums[end] - sums[split]) / (end - split)
        gain = (split - start) * (end - split) / (end - start) * (left - right) ** 2
        weakest = int(np.argmin(gain))
        if gain[weakest] > penalty and (limit is None or points.size <= limit):
            break
        points = np.delete(points, weakest)
    return [int(p) for p in points]


def _best_split(sums: Array, start: int, end: int, min_size: int) -> tuple[float, int] | None:
    """The split of [start, end) that lowers the squared-error cost most, and by how much."""
    if end - start < 2 * min_size:
        return None
    split = np.arange(start + min_size, end - min_size + 1)
    left = (sums[split] - sums[start]) / (split - start)
    right = (sums[end] - sums[split]) / (end - split)
    gain = (split - start) * (end - split) / (end - start) * (left - right) ** 2
    best = int(np.argmax(gain))
    return float(gain[best]), int(split[best])


def robust_scale(y: Array) -> float:
    """Standard deviation estimated by the median absolute deviation."""
    return float(MAD_TO_SIGMA * np.median(np.abs(y - np.median(y))))


def difference_scale(y: Array) -> float:
    """Noise scale from first differences: levels, shifts and slow trends cancel out."""
    if y.size < 3:
        return 0.0
    return robust_scale(np.diff(y)) / math.sqrt(2.0)


def residuals(y: Array, change_points: Sequence[int]) -> Array:
    """The series less the median of its segment."""
    return np.concatenate(
        [y[a:b] - np.median(y[a:b]) for a, b in segment_bounds(y.size, change_points)]
    )


def long_run_scale(noise: Array) -> float:
    """Robust long-run standard deviation of a noise series, the scale a test for a change in
    mean needs: with lag-1 autocorrelation rho the variance of a segment mean is inflated by
    (1 + rho) / (1 - rho), and rho comes from the robust scales of the series and of its
    differences, sigma_d^2 = sigma^2 (1 - rho). Independent noise keeps its own scale.
    """
    sigma, sigma_d = robust_scale(noise), difference_scale(noise)
    if sigma_d <= 0 or sigma_d >= sigma:
        return max(sigma, sigma_d)
    rho = min(1.0 - (sigma_d / sigma) ** 2, MAX_AUTOCORRELATION)
    return sigma * math.sqrt((1.0 + rho) / (1.0 - rho))


def clip_outliers(y: Array, sigma: float, clip_sigmas: float, min_size: int) -> Array:
    """Values pulled to within `clip_sigmas * sigma` of a centred running median."""
    window = 2 * min_size + 1
    median = pd.Series(y).rolling(window, center=True, min_periods=1).median().to_numpy()
    bound = clip_sigmas * sigma
    return np.clip(y, median - bound, median + bound)


def segment_bounds(num_points: int, change_points: Sequence[int]) -> list[tuple[int, int]]:
    """[start, end) of every segment given the change points."""
    bounds = [0, *change_points, num_points]
    return list(itertools.pairwise(bounds))


# --- before/after ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ShiftTest:
    """A before/after comparison of two samples.

    `cliffs_delta` is P(after > before) - P(after < before), in [-1, 1]; `median_ratio` is
    the after median over the before median (None when the before median is 0).
    """

    num_before: int
    num_after: int
    median_before: float
    median_after: float
    median_ratio: float | None
    u_statistic: float
    z_score: float
    p_value: float
    cliffs_delta: float


def compare_samples(before: npt.ArrayLike, after: npt.ArrayLike) -> ShiftTest:
    """Mann-Whitney U test (two-sided, normal approximation with tie correction) and effect
    sizes of raw samples.

    Raises:
        ValueError: either sample is empty or holds a non-finite value.
    """
    return compare_counts(*sample_counts(before, after))


def compare_histograms(before: Histogram, after: Histogram) -> ShiftTest:
    """`compare_samples` on the values binned in two latency histograms (rollups)."""
    return compare_counts(*histogram_counts(before, after))


def _counts_on(indices: npt.NDArray[np.integer], histogram: Histogram) -> npt.NDArray[np.int64]:
    counts = np.zeros(indices.size, dtype=np.int64)
    counts[np.searchsorted(indices, histogram.indices)] = histogram.counts
    return counts


def compare_counts(
    values: npt.ArrayLike, counts_before: npt.ArrayLike, counts_after: npt.ArrayLike
) -> ShiftTest:
    """The Mann-Whitney U test and effect sizes from counts of each sorted distinct value.

    Args:
        values: distinct values in increasing order.
        counts_before: how often each value occurs before.
        counts_after: how often each value occurs after.

    Raises:
        ValueError: either side has no values.
    """
    x = np.asarray(values, dtype=np.float64)
    a = np.asarray(counts_before, dtype=np.float64)
    b = np.asarray(counts_after, dtype=np.float64)
    n1, n2 = float(a.sum()), float(b.sum())
    if n1 == 0 or n2 == 0:
        raise ValueError("both samples need at least one value")
    below = np.concatenate(([0.0], np.cumsum(a)[:-1]))  # before-values strictly smaller
    u_after = float(np.sum(b * (below + 0.5 * a)))  # pairs with after > before, ties half
    total = n1 + n2
    ties = a + b
    tie_term = float(np.sum(ties**3 - ties)) / (total * (total - 1)) if total > 1 else 0.0
    variance = n1 * n2 / 12.0 * ((total + 1) - tie_term)
    z = (u_after - n1 * n2 / 2.0) / math.sqrt(variance) if variance > 0 else 0.0
    median_before, median_after = _weighted_median(x, a), _weighted_median(x, b)
    return ShiftTest(
        num_before=int(n1),
        num_after=int(n2),
        median_before=median_before,
        median_after=median_after,
        median_ratio=median_after / median_before if median_before > 0 else None,
        u_statistic=u_after,
        z_score=z,
        p_value=math.erfc(abs(z) / math.sqrt(2.0)),
        cliffs_delta=2.0 * u_after / (n1 * n2) - 1.0,
    )


@dataclass(frozen=True)
class QuantileTest:
    """Did more requests than before exceed the before window's percentile?

    `threshold` is the before window's quantile; `share_before` and `share_after` are the
    fractions of each window above it. A two-proportion z-test (one-sided: after > before),
    the test that speaks about a tail percentile, where a rank test of the whole distribution
    can miss a change that only the slowest requests show.
    """

    quantile: float
    threshold: float
    share_before: float
    share_after: float
    z_score: float
    p_value: float


def compare_quantile(
    values: npt.ArrayLike,
    counts_before: npt.ArrayLike,
    counts_after: npt.ArrayLike,
    *,
    quantile: float,
) -> QuantileTest:
    """Test whether the share of requests above the before window's `quantile` grew.

    Args:
        values: distinct values in increasing order.
        counts_before: how often each value occurs before.
        counts_after: how often each value occurs after.
        quantile: the percentile as a fraction, e.g. 0.95.
    """
    x = np.asarray(values, dtype=np.float64)
    a = np.asarray(counts_before, dtype=np.float64)
    b = np.asarray(counts_after, dtype=np.float64)
    n1, n2 = float(a.sum()), float(b.sum())
    if n1 == 0 or n2 == 0:
        raise ValueError("both samples need at least one value")
    cumulative = np.cumsum(a)
    position = int(np.searchsorted(cumulative, math.floor(quantile * (n1 - 1)), side="right"))
    above = x > x[position]
    share_before, share_after = float(a[above].sum()) / n1, float(b[above].sum()) / n2
    pooled = (share_before * n1 + share_after * n2) / (n1 + n2)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = (share_after - share_before) / spread if spread > 0 else 0.0
    return QuantileTest(
        quantile=quantile,
        threshold=float(x[position]),
        share_before=share_before,
        share_after=share_after,
        z_score=z,
        p_value=0.5 * math.erfc(z / math.sqrt(2.0)),
    )


def histogram_counts(
    before: Histogram, after: Histogram
) -> tuple[Array, npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The values and per-value counts of two histograms on their shared buckets, ready for
    `compare_counts` and `compare_quantile`."""
    indices = np.union1d(before.indices, after.indices)
    return bin_values(indices), _counts_on(indices, before), _counts_on(indices, after)


def sample_counts(
    before: npt.ArrayLike, after: npt.ArrayLike
) -> tuple[Array, npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The distinct values of two raw samples and how often each occurs in each."""
    first = np.asarray(before, dtype=np.float64).ravel()
    second = np.asarray(after, dtype=np.float64).ravel()
    if not (np.all(np.isfinite(first)) and np.all(np.isfinite(second))):
        raise ValueError("samples must be finite")
    values, inverse = np.unique(np.concatenate([first, second]), return_inverse=True)
    counts_before = np.bincount(inverse[: first.size], minlength=values.size)
    counts_after = np.bincount(inverse[first.size :], minlength=values.size)
    return values, counts_before, counts_after


def _weighted_median(values: Array, counts: Array) -> float:
    """The value at rank floor(0.5 (n - 1)), as analyzers.histograms defines quantiles."""
    cumulative = np.cumsum(counts)
    rank = math.floor(0.5 * (cumulative[-1] - 1))
    return float(values[int(np.searchsorted(cumulative, rank, side="right"))])


# --- attribution -----------------------------------------------------------------------------

#: A slice with at least this share of the requests before and after is the whole population.
WHOLE_SHARE = 0.99
#: Histograms as dense count vectors over every bucket index, for cheap arithmetic.
_NUM_BINS = 65536


def dense_counts(histogram: Histogram) -> Array:
    """A histogram as a count per bucket index (offset by the zero bucket)."""
    return np.bincount(  # type: ignore[return-value]
        histogram.indices.astype(np.int64) - ZERO_BIN,
        weights=histogram.counts.astype(np.float64),
        minlength=_NUM_BINS,
    )


def dense_quantile(counts: Array, q: float) -> float | None:
    """Quantile `q` (0..1) of dense counts, with analyzers.histograms' rank convention."""
    total = float(counts.sum())
    if total <= 0:
        return None
    cumulative = np.cumsum(counts)
    rank = math.floor(q * (round(total) - 1))
    position = int(np.searchsorted(cumulative, rank, side="right"))
    return float(bin_values(np.array([position + ZERO_BIN]))[0])


@dataclass(frozen=True)
class SliceShift:
    """One slice's part in a change of a percentile between two windows.

    `explained` is the share of the overall change that goes away when the slice is given its
    before distribution back (1: all of it; can exceed 1 or go below 0 when other slices moved
    the other way). `share_before` and `share_after` are the slice's shares of the requests
    of each window.
    """

    dimension: str
    value: str
    num_before: int
    num_after: int
    share_before: float
    share_after: float
    before: float | None
    after: float | None
    counterfactual: float | None
    explained: float


def attribute_shift(
    overall_before: Histogram,
    overall_after: Histogram,
    slices: Mapping[tuple[str, str], tuple[Histogram, Histogram]],
    *,
    quantile: float,
    preferred_dimensions: Sequence[str] = (),
) -> list[SliceShift]:
    """Rank slices by how much of the change in a percentile each explains.

    Args:
        overall_before: every request of the model (or version) before the onset.
        overall_after: every request after it.
        slices: (dimension, value) -> (before, after) histograms of that slice's requests; the
            slices of one dimension are disjoint subsets of the overall requests.
        quantile: the percentile as a fraction, e.g. 0.95.
        preferred_dimensions: among slices that explain as much with as much traffic (a canary
            tag and its version), these dimensions come first.

    Returns:
        One result per slice with traffic after the onset, most explaining first and, among
        those explaining as much, the smallest first (the most specific). A slice that holds
        (nearly) every request in both windows isolates nothing and is left out.
    """
    before = dense_counts(overall_before)
    after = dense_counts(overall_after)
    p_before, p_after = dense_quantile(before, quantile), dense_quantile(after, quantile)
    if p_before is None or p_after is None:
        return []
    change = p_after - p_before
    total_before, total_after = float(before.sum()), float(after.sum())
    results = []
    for (dimension, value), (slice_before, slice_after) in slices.items():
        share_before = slice_before.total / total_before
        share_after = slice_after.total / total_after
        if slice_after.total == 0 or min(share_before, share_after) >= WHOLE_SHARE:
            continue
        own_before, own_after = dense_counts(slice_before), dense_counts(slice_after)
        replacement = own_before if own_before.sum() > 0 else before
        scaled = replacement * (own_after.sum() / replacement.sum())
        counterfactual = dense_quantile(np.maximum(after - own_after, 0.0) + scaled, quantile)
        explained = (p_after - counterfactual) / change if change and counterfactual else 0.0
        results.append(
            SliceShift(
                dimension=dimension,
                value=value,
                num_before=slice_before.total,
                num_after=slice_after.total,
                share_before=share_before,
                share_after=share_after,
                before=dense_quantile(own_before, quantile),
                after=dense_quantile(own_after, quantile),
                counterfactual=counterfactual,
                explained=float(explained),
            )
        )
    preferred = list(preferred_dimensions)
    return sorted(
        results,
        key=lambda s: (
            -round(s.explained, 2),
            round(s.share_after, 2),
            preferred.index(s.dimension) if s.dimension in preferred else len(preferred),
            s.dimension,
            s.value,
        ),
    )


def nearest_event(
    events: pd.DataFrame,
    onset: dt.datetime,
    *,
    horizon: dt.timedelta,
    tolerance: dt.timedelta = dt.timedelta(0),
    kinds: Sequence[str] = CHANGE_EVENT_KINDS,
) -> int | None:
    """The row label of the latest change event at or before the onset.

    Args:
        events: frame with at least `timestamp` (aware) and `kind` columns.
        onset: when the new level starts (the start of its first bucket).
        horizon: how long before the onset an event may be to count.
        tolerance: how long after the onset an event may be (an event inside the onset's
            bucket precedes the requests that show the change).
        kinds: event kinds that count.

    Returns:
        The index label of the chosen row, or None when no event is near enough.
    """
    if events.empty:
        return None
    times = pd.to_datetime(events["timestamp"], utc=True)
    eligible = (
        events["kind"].isin(list(kinds))
        & (times >= pd.Timestamp(onset - horizon))
        & (times <= pd.Timestamp(onset + tolerance))
    )
    if not eligible.any():
        return None
    latest = times[eligible]
    return latest.index[int(np.argmax(latest.to_numpy()))]
