"""Training-serving skew: schema, distribution and feature-value skew.

- Schema skew: features the training (reference) data has and serving lacks (`missing`),
  serving features training never had (`extra`), features whose value type differs
  (`retyped`: number, integer, boolean, string; integer and number count as the same), and, per
  categorical feature, serving values never seen in training with the share of serving values
  they make up (`unseen_categories`).
- Distribution skew: `analyzers.drift.detect_drift` with the training data as reference.
- Feature-value skew: for entities present in both (rows joined on a key the caller names),
  per feature the share of joined rows whose values differ (`mismatch_rate`) and, for numbers,
  the mean and largest absolute difference and the mean relative difference. Two numbers match
  when they are equal within `rtol` relative and `atol` absolute tolerance; a null matches only
  a null.

Pure: data frames in, a frozen result out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from analyzers.drift import DriftResult, detect_drift

MAX_UNSEEN_LISTED = 20
RTOL = 1e-6
ATOL = 1e-9


@dataclass(frozen=True)
class SchemaSkew:
    missing: tuple[str, ...]
    extra: tuple[str, ...]
    retyped: dict[str, dict[str, str]]
    unseen_categories: dict[str, dict[str, Any]]

    @property
    def has_skew(self) -> bool:
        return bool(self.missing or self.extra or self.retyped or self.unseen_categories)


@dataclass(frozen=True)
class ValueSkew:
    """Feature-value skew of one feature over the joined rows."""

    feature: str
    num_joined: int
    num_mismatched: int
    mismatch_rate: float
    mean_abs_diff: float | None
    max_abs_diff: float | None
    mean_rel_diff: float | None


@dataclass(frozen=True)
class SkewResult:
    schema: SchemaSkew
    distribution: DriftResult
    join_key: str | None
    num_joined: int
    values: tuple[ValueSkew, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": {**asdict(self.schema), "has_skew": self.schema.has_skew},
            "distribution": self.distribution.to_dict(),
            "join_key": self.join_key,
            "num_joined": self.num_joined,
            "values": [asdict(v) for v in self.values],
        }


def value_type(values: pd.Series) -> str:
    """empty, number, integer, boolean, string or mixed, from the non-null values."""
    non_null = values.dropna()
    if non_null.empty:
        return "empty"
    if pd.api.types.is_bool_dtype(non_null.dtype):
        return "boolean"
    if pd.api.types.is_numeric_dtype(non_null.dtype):
        numbers = non_null.to_numpy(dtype=np.float64)
        finite = numbers[np.isfinite(numbers)]
        return "integer" if np.array_equal(finite, np.round(finite)) else "number"
    kinds = {_type_name(v) for v in non_null}
    return kinds.pop() if len(kinds) == 1 else "mixed"


def _type_name(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return "boolean"
    if isinstance(value, int | np.integer):
        return "integer"
    if isinstance(value, float | np.floating):
        return "number"
    return "string"


def _same_type(a: str, b: str) -> bool:
    numeric = {"number", "integer"}
    return a == b or (a in numeric and b in numeric) or "empty" in (a, b)


def detect_schema_skew(
    reference: pd.DataFrame,
    serving: pd.DataFrame,
    *,
    reference_types: Mapping[str, str] | None = None,
    categorical: Sequence[str] = (),
) -> SchemaSkew:
    """Missing, extra and retyped features, and unseen categories of `categorical` features."""
    ref_types = dict(reference_types or {c: value_type(reference[c]) for c in reference.columns})
    serving_types = {str(c): value_type(serving[c]) for c in serving.columns}
    missing = tuple(sorted(set(ref_types) - set(serving_types)))
    extra = tuple(sorted(set(serving_types) - set(ref_types)))
    retyped = {
        name: {"reference": ref_types[name], "serving": serving_types[name]}
        for name in sorted(set(ref_types) & set(serving_types))
        if not _same_type(ref_types[name], serving_types[name])
    }
    unseen = {}
    for name in categorical:
        if name in reference.columns and name in serving.columns:
            found = _unseen(reference[name], serving[name])
            if found:
                unseen[name] = found
    return SchemaSkew(missing, extra, retyped, unseen)


def _unseen(reference: pd.Series, serving: pd.Series) -> dict[str, Any] | None:
    known = set(map(_key, reference.dropna()))
    values = serving.dropna()
    keys = values.map(_key)
    is_new = ~keys.isin(known)
    if not is_new.any():
        return None
    counts = keys[is_new].value_counts()
    return {
        "num_values": int(counts.size),
        "share": float(is_new.mean()),
        "values": [str(v) for v in counts.index[:MAX_UNSEEN_LISTED]],
    }


def _key(value: Any) -> str:
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value).lower() if isinstance(value, bool | np.bool_) else str(value)


def detect_value_skew(
    reference: pd.DataFrame,
    serving: pd.DataFrame,
    *,
    join_key: str,
    features: Sequence[str] | None = None,
    rtol: float = RTOL,
    atol: float = ATOL,
) -> tuple[int, tuple[ValueSkew, ...]]:
    """Per-feature mismatches between the rows of both frames that share a `join_key` value
    (the last row of each key on each side).

    Returns:
        (number of joined entities, one `ValueSkew` per feature present on both sides).
    """
    for side, frame in (("reference", reference), ("serving", serving)):
        if join_key not in frame.columns:
            raise ValueError(f"the join key {join_key!r} is not a column of the {side} data")
    ref = reference.dropna(subset=[join_key]).drop_duplicates(join_key, keep="last")
    cur = serving.dropna(subset=[join_key]).drop_duplicates(join_key, keep="last")
    ref = ref.assign(**{join_key: ref[join_key].map(_key)}).set_index(join_key)
    cur = cur.assign(**{join_key: cur[join_key].map(_key)}).set_index(join_key)
    common = ref.index.intersection(cur.index)
    names = [str(c) for c in (features or ref.columns) if c in ref.columns and c in cur.columns]
    results = tuple(
        _value_skew(name, ref.loc[common, name], cur.loc[common, name], rtol, atol)
        for name in names
    )
    return len(common), results


def _value_skew(
    name: str, reference: pd.Series, serving: pd.Series, rtol: float, atol: float
) -> ValueSkew:
    size = len(reference)
    ref_null, cur_null = reference.isna().to_numpy(), serving.isna().to_numpy()
    numeric = _numeric_pair(reference, serving)
    if numeric is None:
        same = (reference.map(_key).to_numpy() == serving.map(_key).to_numpy()) | (
            ref_null & cur_null
        )
        same &= ref_null == cur_null
        return _value_result(name, size, int((~same).sum()), None)
    ref_values, cur_values = numeric
    both = ~ref_null & ~cur_null
    close = np.isclose(ref_values, cur_values, rtol=rtol, atol=atol, equal_nan=True)
    mismatched = int(((ref_null != cur_null) | (both & ~close)).sum())
    diff = np.abs(ref_values[both] - cur_values[both])
    return _value_result(name, size, mismatched, (diff, np.abs(ref_values[both])))


def _numeric_pair(reference: pd.Series, serving: pd.Series) -> tuple[np.ndarray, np.ndarray] | None:
    pair = []
    for values in (reference, serving):
        non_null = values.dropna()
        if pd.api.types.is_bool_dtype(non_null.dtype) or any(
            isinstance(v, bool | np.bool_) for v in non_null.head(1000)
        ):
            return None
        converted = pd.to_numeric(values, errors="coerce")
        if converted.notna().sum() != non_null.size:
            return None
        pair.append(converted.to_numpy(dtype=np.float64))
    return pair[0], pair[1]


def _value_result(
    name: str, size: int, mismatched: int, numbers: tuple[np.ndarray, np.ndarray] | None
) -> ValueSkew:
    mean_abs = max_abs = mean_rel = None
    if numbers is not None and numbers[0].size:
        diff, magnitude = numbers
        mean_abs, max_abs = float(diff.mean()), float(diff.max())
        with np.errstate(divide="ignore", invalid="ignore"):
            relative = np.where(magnitude > 0, diff / magnitude, np.where(diff > 0, np.inf, 0.0))
        finite = relative[np.isfinite(relative)]
        mean_rel = float(finite.mean()) if finite.size else None
    return ValueSkew(
        feature=name,
        num_joined=size,
        num_mismatched=mismatched,
        mismatch_rate=mismatched / size if size else 0.0,
        mean_abs_diff=mean_abs,
        max_abs_diff=max_abs,
        mean_rel_diff=mean_rel,
    )


def detect_skew(
    reference: pd.DataFrame,
    serving: pd.DataFrame,
    *,
    join_key: str | None = None,
    reference_types: Mapping[str, str] | None = None,
    **drift_options: Any,
) -> SkewResult:
    """Schema, distribution and (with `join_key`) feature-value skew of serving data against
    training data. `drift_options` go to `detect_drift`."""
    features = [c for c in reference.columns if c in serving.columns and c != join_key]
    distribution = detect_drift(reference[features], serving[features], **drift_options)
    categorical = [f.feature for f in distribution.features if f.kind == "categorical"]
    schema = detect_schema_skew(
        reference.drop(columns=[join_key], errors="ignore"),
        serving.drop(columns=[join_key], errors="ignore"),
        reference_types=reference_types,
        categorical=categorical,
    )
    num_joined, values = 0, tuple[ValueSkew, ...]()
    if join_key is not None:
        num_joined, values = detect_value_skew(reference, serving, join_key=join_key)
    return SkewResult(schema, distribution, join_key, num_joined, values)
