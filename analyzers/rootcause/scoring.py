"""Small numeric helpers shared by the checks: thresholds, ramps and ratios.

Scores come from linear ramps between a threshold (where evidence starts to count) and a level
where it is conclusive, combined by multiplication (both must hold) or noisy-OR (independent
evidence for the same cause).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from analyzers.histograms import Histogram

#: Fewest requests per period for a latency or error comparison to mean anything.
MIN_REQUESTS = 30
#: Window p95 (or p99) at least this much above the baseline is a latency regression ...
LATENCY_RATIO = 1.2
#: ... and by at least this many milliseconds (the histograms' 1 % error stays far below).
LATENCY_MIN_DELTA_MS = 1.0
#: z of the confidence intervals of percentiles: a percentile rose beyond noise when the 95 %
#: intervals of the two periods (or of a slice and its peers) do not overlap.
QUANTILE_Z = 1.96


def ramp(value: float, start: float, full: float) -> float:
    """0 at or below `start`, 1 at or above `full`, linear in between; 0 for NaN."""
    if math.isnan(value) or full == start:
        return 0.0 if math.isnan(value) or value < start else 1.0
    return min(1.0, max(0.0, (value - start) / (full - start)))


def noisy_or(scores: Iterable[float]) -> float:
    """Probability-style union of independent evidence: 1 - prod(1 - s)."""
    remaining = 1.0
    for score in scores:
        remaining *= 1.0 - min(max(score, 0.0), 1.0)
    return 1.0 - remaining


def ratio(current: float, baseline: float) -> float:
    """current / baseline; NaN when either is missing or the baseline is not positive."""
    if math.isnan(current) or math.isnan(baseline) or baseline <= 0:
        return math.nan
    return current / baseline


def latency_rose(current: float, baseline: float) -> bool:
    """Whether `current` latency is a regression against `baseline` beyond noise."""
    if math.isnan(current) or math.isnan(baseline):
        return False
    return current >= baseline * LATENCY_RATIO and current - baseline >= LATENCY_MIN_DELTA_MS


def quantile_interval(histogram: Histogram, q: float, z: float = QUANTILE_Z) -> tuple[float, float]:
    """Distribution-free confidence interval of the q-quantile of a sample: the sample's
    quantiles at the ranks q -+ z * sqrt(q (1 - q) / n) (the normal approximation of the
    binomial count of values below the true quantile). NaN bounds without data.

    Heavy tails make the interval wide exactly where a point estimate is unstable: a p99 that
    sits on the edge of rare stalls moves a lot between samples, and so does its interval.
    """
    n = histogram.total
    if n == 0:
        return math.nan, math.nan
    half = z * math.sqrt(q * (1 - q) / n)
    low, high = histogram.quantiles([max(q - half, 0.0), min(q + half, 1.0)])
    return (math.nan if low is None else low), (math.nan if high is None else high)


def quantile_rose(current: Histogram, baseline: Histogram, q: float) -> bool:
    """Whether the q-quantile of `current` is a regression against `baseline`: materially
    higher (`latency_rose`) and beyond sampling noise (the confidence intervals of the two
    quantiles do not overlap)."""
    point = current.quantiles([q])[0], baseline.quantiles([q])[0]
    if point[0] is None or point[1] is None or not latency_rose(point[0], point[1]):
        return False
    return quantile_interval(current, q)[0] > quantile_interval(baseline, q)[1]


def two_proportion_z(errors_a: int, n_a: int, errors_b: int, n_b: int) -> float:
    """z statistic of p_b - p_a (pooled); 0 when undefined."""
    if n_a == 0 or n_b == 0:
        return 0.0
    pooled = (errors_a + errors_b) / (n_a + n_b)
    variance = pooled * (1 - pooled) * (1 / n_a + 1 / n_b)
    if variance <= 0:
        return 0.0
    return (errors_b / n_b - errors_a / n_a) / math.sqrt(variance)


def fmt_ms(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.1f} ms"


def fmt_pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{100 * value:.1f} %"


def fmt_ratio(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}x"


def finite(value: float) -> float | None:
    """JSON-friendly: None for NaN and infinities, else the value rounded."""
    return None if math.isnan(value) or math.isinf(value) else round(value, 4)


def json_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-friendly rows: NaN as None, floats rounded, timestamps as text."""
    rows = []
    for record in frame.to_dict(orient="records"):
        rows.append({str(k): _plain(v) for k, v in record.items()})
    return rows


def _plain(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return finite(float(value))
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value
