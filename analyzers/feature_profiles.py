"""Mergeable per-feature profiles: counts, moments, a quantile sketch and frequent items.

A `FeatureProfile` summarises the values of one feature in any number of rows so that two
profiles of disjoint row sets merge into the profile of their union. Hourly profiles of serving
data merge into the profile of a 30-day window; a training set's profile stands in for the
training set. Drift tests on two profiles are in `analyzers.profile_drift`.

What a profile holds:

- counts: rows, nulls (null, NaN and infinities, which the drift tests drop as Evidently
  does), numbers (of which integral), booleans and strings;
- exact mean, variance (Chan et al.'s parallel update of Welford's moments), minimum, maximum of
  the numbers;
- a KLL quantile sketch of the numbers (Apache DataSketches ``kll_doubles_sketch`` with
  k = `KLL_K`: normalised rank error about 0.3 % at 99 % confidence, exact below about k
  values);
- per-value counts of the numbers while a feature has at most `MAX_NUMBER_ITEMS` distinct
  numbers (exact: what low-cardinality numeric tests need), dropped once it has more;
- a frequent-items sketch of booleans and strings (DataSketches ``frequent_strings_sketch``,
  2^`ITEMS_LG_MAX_MAP` slots: counts are exact while fewer than 0.75 times that many distinct
  values have been seen, and within the sketch's error bound after).

Profiles serialise to bytes (`FeatureProfile.to_bytes`) with a small JSON header, so the database
stores them without caring what is inside.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import datasketches as ds
import numpy as np
import numpy.typing as npt
import orjson
import pandas as pd

KLL_K = 1000
ITEMS_LG_MAX_MAP = 10
MAX_NUMBER_ITEMS = 64
_MAGIC = b"OFP1"
_HEADER = struct.Struct("<4sIIII")
_ERROR_TYPE = ds.frequent_items_error_type.NO_FALSE_NEGATIVES


def encode_item(value: Any) -> str:
    """A value as a frequent-items key: booleans and strings keep their type."""
    if isinstance(value, bool | np.bool_):
        return "b:1" if value else "b:0"
    return "s:" + str(value)


def decode_item(item: str) -> Any:
    if item.startswith("b:"):
        return item == "b:1"
    return item[2:]


@dataclass
class FeatureProfile:
    """Mergeable summary of one feature's values. Build with `FeatureProfile.from_values`."""

    num_rows: int = 0
    num_nulls: int = 0
    num_numbers: int = 0
    num_integers: int = 0
    num_bools: int = 0
    num_strings: int = 0
    mean: float = 0.0
    m2: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf
    number_counts: dict[float, int] | None = field(default_factory=dict)
    quantiles: Any = field(default_factory=lambda: ds.kll_doubles_sketch(KLL_K))
    items: Any = field(default_factory=lambda: ds.frequent_strings_sketch(ITEMS_LG_MAX_MAP))

    # --- building -----------------------------------------------------------------------------

    @classmethod
    def from_values(cls, values: pd.Series | Iterable[Any]) -> FeatureProfile:
        """The profile of a column of values (numbers, booleans, strings, nulls)."""
        profile = cls()
        profile.update(values)
        return profile

    def update(self, values: pd.Series | Iterable[Any]) -> None:
        """Add values to the profile."""
        series = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
        self.num_rows += len(series)
        numbers, others = _split_values(series)
        self.num_nulls += len(series) - numbers.size - len(others)
        self._add_numbers(numbers)
        self._add_others(others)

    def _add_numbers(self, numbers: npt.NDArray[np.float64]) -> None:
        if numbers.size == 0:
            return
        self._merge_moments(
            numbers.size, float(numbers.mean()), float(numbers.var() * numbers.size)
        )
        self.num_integers += int(np.count_nonzero(numbers == np.round(numbers)))
        self.minimum = min(self.minimum, float(numbers.min()))
        self.maximum = max(self.maximum, float(numbers.max()))
        self.quantiles.update(numbers)
        self.num_numbers += numbers.size
        if self.number_counts is not None:
            head = pd.unique(numbers[: 16 * MAX_NUMBER_ITEMS])
            if head.size > MAX_NUMBER_ITEMS:
                self.number_counts = None
                return
            counts = pd.Series(numbers).value_counts(sort=False)
            self._merge_number_counts(
                dict(zip(counts.index.tolist(), counts.tolist(), strict=True))
            )

    def _add_others(self, others: pd.Series) -> None:
        if others.empty:
            return
        is_bool = others.map(lambda v: isinstance(v, bool | np.bool_)).to_numpy(bool)
        self.num_bools += int(is_bool.sum())
        self.num_strings += int((~is_bool).sum())
        counts = others.map(encode_item).value_counts(sort=False)
        for item, count in zip(counts.index, counts.tolist(), strict=True):
            self.items.update(item, int(count))

    def _merge_moments(self, count: int, mean: float, m2: float) -> None:
        total = self.num_numbers + count
        delta = mean - self.mean
        self.mean += delta * count / total
        self.m2 += m2 + delta * delta * self.num_numbers * count / total

    def _merge_number_counts(self, counts: Mapping[float, int]) -> None:
        if self.number_counts is None:
            return
        merged = dict(self.number_counts)
        for value, count in counts.items():
            merged[value] = merged.get(value, 0) + count
        self.number_counts = merged if len(merged) <= MAX_NUMBER_ITEMS else None

    # --- merging ------------------------------------------------------------------------------

    def merge(self, other: FeatureProfile) -> FeatureProfile:
        """A new profile of both profiles' values; neither is changed."""
        merged = FeatureProfile.from_bytes(self.to_bytes())
        merged.merge_in(other)
        return merged

    def merge_in(self, other: FeatureProfile) -> None:
        """Add another profile's values to this one."""
        if other.num_numbers:
            self._merge_moments(other.num_numbers, other.mean, other.m2)
            self.minimum = min(self.minimum, other.minimum)
            self.maximum = max(self.maximum, other.maximum)
            self.quantiles.merge(other.quantiles)
            if other.number_counts is None:
                self.number_counts = None
            else:
                self._merge_number_counts(other.number_counts)
        if not other.items.is_empty():
            self.items.merge(other.items)
        self.num_rows += other.num_rows
        self.num_nulls += other.num_nulls
        self.num_numbers += other.num_numbers
        self.num_integers += other.num_integers
        self.num_bools += other.num_bools
        self.num_strings += other.num_strings

    # --- reading ------------------------------------------------------------------------------

    @property
    def num_values(self) -> int:
        """Non-null values."""
        return self.num_numbers + self.num_bools + self.num_strings

    @property
    def is_numeric(self) -> bool:
        """Every non-null value is a number (booleans are not)."""
        return self.num_numbers > 0 and self.num_bools == 0 and self.num_strings == 0

    @property
    def std(self) -> float:
        """Population standard deviation of the numbers."""
        return math.sqrt(max(self.m2, 0.0) / self.num_numbers) if self.num_numbers else 0.0

    @property
    def value_type(self) -> str:
        """number, integer, boolean, string, mixed or empty."""
        kinds = [
            name
            for name, count in (
                ("number", self.num_numbers),
                ("boolean", self.num_bools),
                ("string", self.num_strings),
            )
            if count
        ]
        if not kinds:
            return "empty"
        if kinds == ["number"]:
            return "integer" if self.num_integers == self.num_numbers else "number"
        return kinds[0] if len(kinds) == 1 else "mixed"

    def category_counts(self) -> dict[Any, float] | None:
        """Count of every distinct non-null value, or None when the profile cannot tell them
        all (too many distinct numbers). String and boolean counts come from the frequent-items
        sketch (exact below its capacity)."""
        counts: dict[Any, float] = {}
        if self.num_numbers:
            if self.number_counts is None:
                return None
            # Next to booleans or strings, numbers are keyed by their text (True == 1.0).
            mixed = bool(self.num_bools or self.num_strings)
            counts.update(
                {
                    _number_key(v) if mixed else float(v): float(c)
                    for v, c in self.number_counts.items()
                }
            )
        if not self.items.is_empty():
            for item, estimate, _lower, _upper in self.items.get_frequent_items(_ERROR_TYPE):
                value = decode_item(item)
                counts[value] = counts.get(value, 0.0) + float(estimate)
        return counts

    def count_distinct(self) -> int | None:
        """Distinct non-null values, or None when more than the profile counts exactly."""
        counts = self.category_counts()
        return None if counts is None else len(counts)

    def weighted_numbers(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """The numbers as sorted (values, weights): exact counts where the profile has them,
        else the quantile sketch's retained items, each weighing the rank it adds in the
        sketch's sorted view (the weights sum to the count)."""
        if self.number_counts is not None:
            pairs = sorted(self.number_counts.items())
            values = np.array([v for v, _ in pairs], dtype=np.float64)
            return values, np.array([w for _, w in pairs], dtype=np.float64)
        if self.num_numbers == 0:
            return np.empty(0), np.empty(0)
        # The sketch's sorted view: each retained item weighs the rank it adds.
        values = np.unique(np.array([item for item, _ in self.quantiles], dtype=np.float64))
        ranks = np.asarray(self.quantiles.get_cdf(values.tolist(), inclusive=True)[:-1])
        weights = np.diff(np.concatenate([[0.0], ranks])) * self.num_numbers
        return values, weights

    def cdf(self, points: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Share of the numbers below each point (strictly), from the quantile sketch."""
        split = np.asarray(points, dtype=np.float64)
        if self.num_numbers == 0:
            return np.zeros(split.size)
        ranks = self.quantiles.get_cdf(sorted(split.tolist()), inclusive=False)
        return np.asarray(ranks[:-1], dtype=np.float64)[np.argsort(np.argsort(split))]

    def quantile_values(self, ranks: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """The numbers at normalised ranks in [0, 1], from the quantile sketch."""
        return np.asarray(self.quantiles.get_quantiles(list(np.asarray(ranks, float))), float)

    # --- serialisation ------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        header = orjson.dumps(
            {
                "rows": self.num_rows,
                "nulls": self.num_nulls,
                "numbers": self.num_numbers,
                "integers": self.num_integers,
                "bools": self.num_bools,
                "strings": self.num_strings,
                "mean": self.mean,
                "m2": self.m2,
                "min": self.minimum if self.num_numbers else None,
                "max": self.maximum if self.num_numbers else None,
                "number_counts": None
                if self.number_counts is None
                else [[v, c] for v, c in self.number_counts.items()],
            }
        )
        quantiles = self.quantiles.serialize() if self.num_numbers else b""
        items = self.items.serialize() if not self.items.is_empty() else b""
        prefix = _HEADER.pack(_MAGIC, len(header), len(quantiles), len(items), 0)
        return prefix + header + quantiles + items

    @classmethod
    def from_bytes(cls, data: bytes) -> FeatureProfile:
        """Inverse of `to_bytes`; ValueError for anything else."""
        try:
            magic, header_len, quantiles_len, items_len, _ = _HEADER.unpack_from(data)
        except struct.error:
            raise ValueError("not a feature profile: too short") from None
        if magic != _MAGIC:
            raise ValueError("not a feature profile")
        offset = _HEADER.size
        header = orjson.loads(data[offset : offset + header_len])
        offset += header_len
        quantiles = data[offset : offset + quantiles_len]
        items = data[offset + quantiles_len : offset + quantiles_len + items_len]
        counts = header["number_counts"]
        return cls(
            num_rows=header["rows"],
            num_nulls=header["nulls"],
            num_numbers=header["numbers"],
            num_integers=header["integers"],
            num_bools=header["bools"],
            num_strings=header["strings"],
            mean=header["mean"],
            m2=header["m2"],
            minimum=math.inf if header["min"] is None else header["min"],
            maximum=-math.inf if header["max"] is None else header["max"],
            number_counts=None if counts is None else {float(v): int(c) for v, c in counts},
            quantiles=ds.kll_doubles_sketch.deserialize(quantiles)
            if quantiles
            else ds.kll_doubles_sketch(KLL_K),
            items=ds.frequent_strings_sketch.deserialize(items)
            if items
            else ds.frequent_strings_sketch(ITEMS_LG_MAX_MAP),
        )


def _number_key(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _split_values(series: pd.Series) -> tuple[npt.NDArray[np.float64], pd.Series]:
    """Finite numbers (as float64), and the non-null non-numbers, of a column."""
    if pd.api.types.is_bool_dtype(series.dtype):
        return np.empty(0), series.dropna()
    if pd.api.types.is_numeric_dtype(series.dtype):
        numbers = series.to_numpy(dtype=np.float64, na_value=np.nan)
        return numbers[np.isfinite(numbers)], pd.Series([], dtype=object)
    values = series.dropna()
    is_number = values.map(
        lambda v: (
            isinstance(v, int | float | np.integer | np.floating)
            and not isinstance(v, bool | np.bool_)
        )
    ).to_numpy(bool)
    numbers = values[is_number].to_numpy(dtype=np.float64)
    return numbers[np.isfinite(numbers)], values[~is_number]


# --- whole data sets ----------------------------------------------------------------------------

ProfileMap = dict[str, FeatureProfile]


def profile_frame(frame: pd.DataFrame) -> ProfileMap:
    """A profile of every column of a data frame."""
    return {str(name): FeatureProfile.from_values(frame[name]) for name in frame.columns}


def merge_profile_maps(maps: Iterable[Mapping[str, FeatureProfile]]) -> ProfileMap:
    """Per-feature merge of many profile maps (a feature missing from some is merged from the
    others)."""
    merged: ProfileMap = {}
    for profiles in maps:
        for name, profile in profiles.items():
            if name in merged:
                merged[name].merge_in(profile)
            else:
                merged[name] = FeatureProfile.from_bytes(profile.to_bytes())
    return merged


def serialize_profile_map(profiles: Mapping[str, FeatureProfile]) -> bytes:
    """Many feature profiles in one byte string."""
    parts = [orjson.dumps([[name, len(blob)] for name, blob in _blobs(profiles)])]
    parts.extend(blob for _, blob in _blobs(profiles))
    return struct.pack("<I", len(parts[0])) + b"".join(parts)


def _blobs(profiles: Mapping[str, FeatureProfile]) -> list[tuple[str, bytes]]:
    return [(name, profiles[name].to_bytes()) for name in sorted(profiles)]


def deserialize_profile_map(data: bytes) -> ProfileMap:
    """Inverse of `serialize_profile_map`; ValueError for anything else."""
    try:
        (index_len,) = struct.unpack_from("<I", data)
        index = orjson.loads(data[4 : 4 + index_len])
    except (struct.error, orjson.JSONDecodeError):
        raise ValueError("not a serialised profile map") from None
    offset = 4 + index_len
    profiles: ProfileMap = {}
    for name, length in index:
        profiles[name] = FeatureProfile.from_bytes(data[offset : offset + length])
        offset += length
    return profiles


def profile_from_summary(
    *,
    num_rows: int,
    num_nulls: int,
    num_numbers: int,
    num_integers: int,
    num_bools: int,
    num_strings: int,
    mean: float,
    std: float,
    minimum: float | None,
    maximum: float | None,
    quantile_values: npt.ArrayLike,
    frequent_items: Iterable[tuple[Any, float]],
    number_counts: Mapping[float, int] | None = None,
) -> FeatureProfile:
    """A profile rebuilt from another tool's summary (such as a whylogs profile).

    The quantile sketch is refilled with `quantile_values` (the values at evenly spaced ranks)
    each repeated in proportion to `num_numbers`, so the sketch's quantiles follow the source's
    at its resolution and its weight matches the source's count; merging with other profiles
    stays correct in weight. Frequent items (booleans and strings) are added with their
    estimated counts; `number_counts`, when the source counted every number exactly, keeps
    low-cardinality numeric tests exact.
    """
    profile = FeatureProfile(
        num_rows=num_rows,
        num_nulls=num_nulls,
        num_numbers=num_numbers,
        num_integers=num_integers,
        num_bools=num_bools,
        num_strings=num_strings,
        mean=mean,
        m2=std * std * num_numbers,
        minimum=math.inf if minimum is None else float(minimum),
        maximum=-math.inf if maximum is None else float(maximum),
        number_counts=None if number_counts is None else dict(number_counts),
    )
    values = np.sort(np.asarray(quantile_values, dtype=np.float64))
    if num_numbers and values.size:
        bounds = np.linspace(0, num_numbers, values.size + 1).round().astype(np.int64)
        repeats = bounds[1:] - bounds[:-1]
        for start in range(0, values.size, 256):  # bounded memory for huge counts
            profile.quantiles.update(
                np.repeat(values[start : start + 256], repeats[start : start + 256])
            )
    for value, count in frequent_items:
        if count > 0:
            profile.items.update(encode_item(value), round(count))
    return profile
