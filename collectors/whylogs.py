"""Decode whylogs profiles (the ``.bin`` files whylogs 1.6 writes with
``profile.view().write(path)``) into plain per-column summaries.

whylogs keeps its own fork of the DataSketches library, whose KLL serialisation is not readable
by Apache DataSketches 5, so the sketches are read through whylogs itself: each numeric column
gives its counts, moments, range and the values at `NUM_QUANTILES` evenly spaced ranks of its
KLL sketch; each column with frequent items gives them with their estimated counts and bounds.
whylogs is an optional dependency (``pip install observe[whylogs]``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NUM_QUANTILES = 1024


class WhylogsFormatError(Exception):
    """The file is not a whylogs profile, or whylogs is not installed."""


@dataclass(frozen=True)
class ColumnSummary:
    """One whylogs column: `num_nulls` counts null, NaN and infinite values; `num_numbers`
    the finite numbers, `num_integers` those whylogs typed as integral."""

    num_rows: int
    num_nulls: int
    num_numbers: int
    num_integers: int
    num_bools: int
    num_strings: int
    mean: float
    std: float
    minimum: float | None
    maximum: float | None
    quantile_values: list[float]
    frequent_items: list[tuple[str, float, float, float]] = field(default_factory=list)


@dataclass(frozen=True)
class WhylogsProfile:
    dataset_timestamp: dt.datetime | None
    columns: dict[str, ColumnSummary]


def read_whylogs_profile(path: Path) -> WhylogsProfile:
    """Read a whylogs profile file; WhylogsFormatError when it is not one."""
    try:
        from whylogs.core import DatasetProfileView
    except ImportError:  # pragma: no cover - depends on the installed extras
        raise WhylogsFormatError(
            "reading whylogs profiles needs whylogs: pip install 'observe[whylogs]'"
        ) from None
    if not path.is_file():
        raise WhylogsFormatError(f"{path} does not exist or is not a file")
    try:
        view = DatasetProfileView.read(str(path))
    except Exception as error:  # whylogs raises many kinds for a foreign file
        raise WhylogsFormatError(f"{path.name} is not a whylogs profile: {error}") from None
    columns = {name: _column(view.get_column(name)) for name in view.get_columns()}
    stamp = view.dataset_timestamp
    return WhylogsProfile(stamp.astimezone(dt.UTC) if stamp else None, columns)


def _summary(column: Any, metric: str) -> dict[str, Any]:
    found = column.get_metric(metric)
    return found.to_summary_dict() if found is not None else {}


def _column(column: Any) -> ColumnSummary:
    counts, types = _summary(column, "counts"), _summary(column, "types")
    num_infinite = int(counts.get("inf", 0))
    num_numbers = int(types.get("integral", 0)) + int(types.get("fractional", 0)) - num_infinite
    distribution = column.get_metric("distribution")
    quantiles: list[float] = []
    moments = _summary(column, "distribution")
    if distribution is not None and num_numbers > 0 and not distribution.kll.value.is_empty():
        ranks = [(i + 0.5) / NUM_QUANTILES for i in range(NUM_QUANTILES)]
        quantiles = [float(v) for v in distribution.kll.value.get_quantiles(ranks)]
    return ColumnSummary(
        num_rows=int(counts.get("n", 0)),
        num_nulls=int(counts.get("null", 0)) + num_infinite,
        num_numbers=max(num_numbers, 0),
        num_integers=int(types.get("integral", 0)),
        num_bools=int(types.get("boolean", 0)),
        num_strings=int(types.get("string", 0)),
        mean=float(moments.get("mean") or 0.0),
        std=float(moments.get("stddev") or 0.0),
        minimum=_finite_or_none(moments.get("min")) if num_numbers else None,
        maximum=_finite_or_none(moments.get("max")) if num_numbers else None,
        quantile_values=quantiles,
        frequent_items=_frequent_items(column),
    )


def _frequent_items(column: Any) -> list[tuple[str, float, float, float]]:
    metric = column.get_metric("frequent_items")
    if metric is None:
        return []
    import whylogs_sketching

    sketch = metric.frequent_strings.value
    error_type = whylogs_sketching.frequent_items_error_type.NO_FALSE_NEGATIVES
    return [
        (str(value), float(est), float(lower), float(upper))
        for value, est, lower, upper in sketch.get_frequent_items(error_type)
    ]


def _finite_or_none(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if number == number and abs(number) != float("inf") else None
