"""Data drift between a reference and a current data set, per feature and for the data set.

Method (Evidently's DataDriftPreset, which this module agrees with; see the README):

1. Each feature's kind is inferred from the current data as Evidently infers it: floats are
   numeric, integers numeric when they have more than 10 distinct values and categorical
   otherwise, booleans and strings categorical. `kinds=` overrides it.
2. Nulls, NaN and infinities are dropped on both sides; a feature without values on either side
   is skipped, with the reason.
3. The default test depends on the kind, on the number of reference values and on the number
   of distinct values of both sides: with at most 1,000 reference values, KS for numeric
   features (chi-square with 3 to 5 distinct values, Z with 2 or fewer), chi-square for
   categorical ones (Z for binary); above, normed Wasserstein for numeric features
   (Jensen-Shannon with 5 or fewer distinct values) and Jensen-Shannon for categorical ones.
   `tests=` and `thresholds=` set them per feature.
4. The data set drifts when the share of drifted features is at least `drift_share` (0.5).

`detect_drift` works on raw frames; `detect_drift_from_profiles` on mergeable feature profiles
(analyzers.feature_profiles), which is how windows of any length are compared without raw rows. Each
feature result carries the data to plot it: both sides' histograms over the same bins, or both
sides' category shares.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from analyzers import profile_drift
from analyzers import stattests as st
from analyzers.feature_profiles import FeatureProfile

DEFAULT_DRIFT_SHARE = 0.5
SMALL_REFERENCE_ROWS = 1000
INTEGER_CATEGORY_LIMIT = 10
PLOT_BINS = 20
PLOT_CATEGORIES = 20
OTHER_CATEGORY = "(other)"


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's drift: the test, its statistic, p-value (None for distances), threshold
    and verdict, the value counts on each side, and `plot` data (see `histogram_plot`,
    `category_plot`)."""

    feature: str
    kind: str
    test: str
    statistic: float
    p_value: float | None
    threshold: float
    drifted: bool
    num_reference: int
    num_current: int
    null_share_reference: float
    null_share_current: float
    plot: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def score(self) -> float:
        """The value compared with the threshold: the p-value, or the distance."""
        return self.statistic if self.p_value is None else self.p_value

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "score": _finite(self.score)}


@dataclass(frozen=True)
class DriftResult:
    """Per-feature results, the features skipped and why, and the data set verdict."""

    features: tuple[FeatureDrift, ...]
    skipped: dict[str, str]
    drift_share: float
    source: str

    @property
    def num_drifted(self) -> int:
        return sum(f.drifted for f in self.features)

    @property
    def share_drifted(self) -> float:
        return self.num_drifted / len(self.features) if self.features else 0.0

    @property
    def dataset_drifted(self) -> bool:
        return bool(self.features) and self.share_drifted >= self.drift_share

    def feature(self, name: str) -> FeatureDrift:
        for item in self.features:
            if item.feature == name:
                return item
        raise KeyError(name)

    def to_frame(self) -> pd.DataFrame:
        """One row per feature: feature, kind, test, statistic, p_value, threshold, drifted."""
        columns = ["feature", "kind", "test", "statistic", "p_value", "threshold", "drifted"]
        return pd.DataFrame(
            [{c: getattr(f, c) for c in columns} for f in self.features], columns=columns
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset_drifted": self.dataset_drifted,
            "num_features": len(self.features),
            "num_drifted": self.num_drifted,
            "share_drifted": self.share_drifted,
            "drift_share": self.drift_share,
            "source": self.source,
            "features": [_clean(f.to_dict()) for f in self.features],
            "skipped": dict(self.skipped),
        }


def _finite(value: float | None) -> float | None:
    if value is None or not np.isfinite(value):
        return None if value is None or np.isnan(value) else float(np.sign(value) * 1e308)
    return float(value)


def _clean(item: dict[str, Any]) -> dict[str, Any]:
    for key in ("statistic", "p_value"):
        item[key] = _finite(item[key])
    return item


# --- kinds and default tests ------------------------------------------------------------------


def infer_kind(values: pd.Series) -> st.Kind | None:
    """numeric or categorical as Evidently infers column types; None when there are no values."""
    dtype = values.dtype
    if pd.api.types.is_integer_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        if values.empty:
            return None
        return "categorical" if values.nunique() <= INTEGER_CATEGORY_LIMIT else "numeric"
    if values.empty or (pd.isna(values.iat[0]) and not values.notna().any()):
        return None
    if pd.api.types.is_bool_dtype(dtype):
        return "categorical"
    if pd.api.types.is_float_dtype(dtype):
        return "numeric"
    return "categorical"


def profile_kind(profile: FeatureProfile) -> st.Kind | None:
    """The kind of a profiled feature: numbers are numeric, except integers with at most 10
    distinct values, which are categorical (as for integer columns); anything else categorical."""
    if profile.num_values == 0:
        return None
    if not profile.is_numeric:
        return "categorical"
    if profile.num_integers == profile.num_numbers:
        distinct = profile.count_distinct()
        if distinct is not None and distinct <= INTEGER_CATEGORY_LIMIT:
            return "categorical"
    return "numeric"


def default_test(kind: st.Kind, num_reference: int, num_distinct: int | None) -> str:
    """Evidently's choice of test; `num_distinct` is None when known to be large."""
    many = num_distinct is None or num_distinct > 5
    binary = num_distinct is not None and num_distinct <= 2
    if num_reference <= SMALL_REFERENCE_ROWS:
        if kind == "numeric" and many:
            return "ks"
        return "z" if binary else "chisquare"
    if kind == "numeric" and many:
        return "wasserstein"
    return "jensenshannon"


# --- raw frames -------------------------------------------------------------------------------


def detect_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    features: Sequence[str] | None = None,
    tests: Mapping[str, str] | None = None,
    thresholds: Mapping[str, float] | None = None,
    kinds: Mapping[str, str] | None = None,
    drift_share: float = DEFAULT_DRIFT_SHARE,
    plot_bins: int = PLOT_BINS,
) -> DriftResult:
    """Compare every feature of `current` with `reference`.

    Args:
        reference: the baseline (training set or an earlier window), one column per feature.
        current: the data to check.
        features: only these features (default: the columns both frames have).
        tests: test name per feature (see `analyzers.stattests.list_stattests`).
        thresholds: threshold per feature (default: the test's).
        kinds: "numeric" or "categorical" per feature (default: inferred from `current`).
        drift_share: share of drifted features at which the data set drifts.
        plot_bins: histogram bins of the plot data.

    Returns:
        A `DriftResult`; features present on one side only are in `skipped`.
    """
    results, skipped = _compare_features(
        _raw_feature, reference, current, features, tests, thresholds, kinds, plot_bins
    )
    return DriftResult(results, skipped, drift_share, "raw")


#: Compares one feature of both sides: (name, reference, current, test, threshold, kind,
#: plot_bins) -> its drift, or why it was skipped.
_FeatureComparison = Callable[
    [str, Any, Any, str | None, float | None, str | None, int], FeatureDrift | str
]


def _compare_features(
    compare: _FeatureComparison,
    reference: pd.DataFrame | Mapping[str, FeatureProfile],
    current: pd.DataFrame | Mapping[str, FeatureProfile],
    features: Sequence[str] | None,
    tests: Mapping[str, str] | None,
    thresholds: Mapping[str, float] | None,
    kinds: Mapping[str, str] | None,
    plot_bins: int,
) -> tuple[tuple[FeatureDrift, ...], dict[str, str]]:
    """`compare` on each feature both sides have, with its test, threshold and kind; returns
    the results and the skipped features with the reason (one side only, or `compare`'s)."""
    tests, thresholds, kinds = dict(tests or {}), dict(thresholds or {}), dict(kinds or {})
    _check_options(tests, kinds)
    names, skipped = _feature_names(list(reference), list(current), features)
    results = []
    for name in names:
        outcome = compare(
            name,
            reference[name],
            current[name],
            tests.get(name),
            thresholds.get(name),
            kinds.get(name),
            plot_bins,
        )
        if isinstance(outcome, str):
            skipped[name] = outcome
        else:
            results.append(outcome)
    return tuple(results), skipped


def _check_options(tests: Mapping[str, str], kinds: Mapping[str, str]) -> None:
    for name in tests.values():
        st.get_stattest(name)
    for feature, kind in kinds.items():
        if kind not in st.KINDS:
            raise ValueError(f"{feature}: kind must be numeric or categorical, not {kind!r}")


def _feature_names(
    reference: list[Any], current: list[Any], features: Sequence[str] | None
) -> tuple[list[str], dict[str, str]]:
    skipped: dict[str, str] = {}
    ref_names, cur_names = {str(c) for c in reference}, {str(c) for c in current}
    wanted = list(features) if features is not None else [str(c) for c in current]
    if features is None:
        wanted += [str(c) for c in reference if str(c) not in cur_names]
    names = []
    for name in wanted:
        if name not in ref_names:
            skipped[name] = "not in the reference data"
        elif name not in cur_names:
            skipped[name] = "not in the current data"
        else:
            names.append(name)
    return names, skipped


def clean_values(values: pd.Series, kind: st.Kind) -> npt.NDArray[Any]:
    """The values a test sees: nulls, NaN and infinities dropped (numbers as float64)."""
    if kind == "numeric":
        array = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        return array[np.isfinite(array)]
    array = values.to_numpy()
    if pd.api.types.is_float_dtype(array.dtype):
        return array[np.isfinite(array)]
    present = values.notna().to_numpy()
    return array if present.all() else array[present]


def _raw_feature(
    name: str,
    reference: pd.Series,
    current: pd.Series,
    test: str | None,
    threshold: float | None,
    kind: str | None,
    plot_bins: int,
) -> FeatureDrift | str:
    kind = kind or infer_kind(current) or infer_kind(reference)
    if kind is None:
        return "no values on either side"
    if kind == "numeric" and not _numbers_only(reference, current):
        return "numeric test asked for, but the feature holds non-numbers"
    if kind == "categorical":
        return _raw_categorical(name, reference, current, test, threshold)
    ref_values, cur_values = clean_values(reference, "numeric"), clean_values(current, "numeric")
    if ref_values.size == 0 or cur_values.size == 0:
        return f"no values in the {'reference' if ref_values.size == 0 else 'current'} data"
    if test is None:
        distinct = st.count_distinct(ref_values, 5)
        if distinct <= 5:
            distinct = st.count_distinct(np.concatenate([ref_values, cur_values]), 5)
        test = default_test("numeric", ref_values.size, distinct if distinct <= 5 else None)
    spec = st.get_stattest(test)
    if "numeric" not in spec.kinds:
        return f"test {test!r} does not apply to numeric features"
    # Sorted once: no test depends on the order, and several sort.
    ref_values, cur_values = np.sort(ref_values), np.sort(cur_values)
    outcome = spec(ref_values, cur_values, kind="numeric", threshold=threshold)
    plot = histogram_plot(ref_values, cur_values, plot_bins)
    sizes = (len(reference), len(current), ref_values.size, cur_values.size)
    return _feature_result(name, "numeric", outcome, *sizes, plot)


def _raw_categorical(
    name: str, reference: pd.Series, current: pd.Series, test: str | None, threshold: float | None
) -> FeatureDrift | str:
    """Categorical features are counted once (nulls dropped), for the test and the plot."""
    ref_counts, cur_counts = _value_counts(reference), _value_counts(current)
    num_ref, num_cur = int(ref_counts.sum()), int(cur_counts.sum())
    if num_ref == 0 or num_cur == 0:
        return f"no values in the {'reference' if num_ref == 0 else 'current'} data"
    keys, ref_array, cur_array = st.align_counts(ref_counts, cur_counts)
    if test is None:
        distinct = len(keys)
        test = default_test("categorical", num_ref, distinct if distinct <= 5 else None)
    spec = st.get_stattest(test)
    if "categorical" not in spec.kinds:
        return f"test {test!r} does not apply to categorical features"
    outcome = st.run_on_counts(test, keys, ref_array, cur_array, threshold)
    plot = category_plot(keys, ref_array, cur_array)
    sizes = (len(reference), len(current), num_ref, num_cur)
    return _feature_result(name, "categorical", outcome, *sizes, plot)


def _value_counts(values: pd.Series) -> pd.Series:
    if pd.api.types.is_float_dtype(values.dtype):  # infinities count as missing, like NaN
        values = values[np.isfinite(values.to_numpy())]
    return values.value_counts(sort=False, dropna=True)


def _numbers_only(*columns: pd.Series) -> bool:
    for column in columns:
        if pd.api.types.is_bool_dtype(column.dtype):
            return False
        if pd.api.types.is_numeric_dtype(column.dtype):
            continue
        values = column.dropna()
        if values.empty:
            continue
        if pd.api.types.is_bool_dtype(values.dtype):
            return False
        if (
            not pd.api.types.is_numeric_dtype(values.dtype)
            and pd.to_numeric(values, errors="coerce").isna().any()
        ):
            return False
    return True


def _feature_result(
    name: str,
    kind: str,
    outcome: st.StatTestResult,
    ref_rows: int,
    cur_rows: int,
    ref_values: int,
    cur_values: int,
    plot: dict[str, Any],
) -> FeatureDrift:
    return FeatureDrift(
        feature=name,
        kind=kind,
        test=outcome.test,
        statistic=outcome.statistic,
        p_value=outcome.p_value,
        threshold=outcome.threshold,
        drifted=outcome.drifted,
        num_reference=ref_values,
        num_current=cur_values,
        null_share_reference=1 - ref_values / ref_rows if ref_rows else 0.0,
        null_share_current=1 - cur_values / cur_rows if cur_rows else 0.0,
        plot=plot,
    )


# --- plot data --------------------------------------------------------------------------------


def histogram_plot(
    reference: npt.NDArray[Any], current: npt.NDArray[Any], bins: int
) -> dict[str, Any]:
    """Both sides' shares over the same `bins` equal-width bins spanning both samples."""
    reference, current = st.sorted_copy(reference), st.sorted_copy(current)
    low, high = float(min(reference[0], current[0])), float(max(reference[-1], current[-1]))
    edges = np.histogram_bin_edges([low, high], bins)
    return _histogram(edges, _sorted_shares(reference, edges), _sorted_shares(current, edges))


def _sorted_shares(values: npt.NDArray[Any], edges: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Shares of sorted values per bin (the last bin closed), by binary search."""
    positions = np.searchsorted(values, edges, side="left")
    positions[-1] = values.size
    return np.diff(positions) / values.size


def _histogram(
    edges: npt.NDArray[Any], reference: npt.NDArray[Any], current: npt.NDArray[Any]
) -> dict[str, Any]:
    return {
        "type": "histogram",
        "edges": [float(e) for e in edges],
        "reference": [float(v) for v in reference],
        "current": [float(v) for v in current],
    }


def category_plot(
    keys: list[Any], ref_counts: npt.NDArray[Any], cur_counts: npt.NDArray[Any]
) -> dict[str, Any]:
    """Both sides' shares of the `PLOT_CATEGORIES` most common values (the rest as one)."""
    ref_shares = ref_counts / max(ref_counts.sum(), 1)
    cur_shares = cur_counts / max(cur_counts.sum(), 1)
    order = np.argsort(-(ref_shares + cur_shares), kind="stable")
    top, rest = order[:PLOT_CATEGORIES], order[PLOT_CATEGORIES:]
    categories = [_label(keys[i]) for i in top]
    ref_top, cur_top = [float(ref_shares[i]) for i in top], [float(cur_shares[i]) for i in top]
    if rest.size:
        categories.append(OTHER_CATEGORY)
        ref_top.append(float(ref_shares[rest].sum()))
        cur_top.append(float(cur_shares[rest].sum()))
    return {
        "type": "categories",
        "categories": categories,
        "reference": ref_top,
        "current": cur_top,
    }


def _label(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).lower() if isinstance(value, bool | np.bool_) else str(value)


# --- profiles ---------------------------------------------------------------------------------


def detect_drift_from_profiles(
    reference: Mapping[str, FeatureProfile],
    current: Mapping[str, FeatureProfile],
    *,
    features: Sequence[str] | None = None,
    tests: Mapping[str, str] | None = None,
    thresholds: Mapping[str, float] | None = None,
    kinds: Mapping[str, str] | None = None,
    drift_share: float = DEFAULT_DRIFT_SHARE,
    plot_bins: int = PLOT_BINS,
) -> DriftResult:
    """`detect_drift` on feature profiles (see analyzers.profile_drift for the tolerance)."""
    results, skipped = _compare_features(
        _profile_feature, reference, current, features, tests, thresholds, kinds, plot_bins
    )
    return DriftResult(results, skipped, drift_share, "profiles")


def _profile_feature(
    name: str,
    reference: FeatureProfile,
    current: FeatureProfile,
    test: str | None,
    threshold: float | None,
    kind: str | None,
    plot_bins: int,
) -> FeatureDrift | str:
    kind = kind or profile_kind(current) or profile_kind(reference)
    if kind is None:
        return "no values on either side"
    if reference.num_values == 0:
        return "no values in the reference data"
    if current.num_values == 0:
        return "no values in the current data"
    if kind == "numeric" and not (reference.is_numeric and current.is_numeric):
        return "numeric test asked for, but the feature holds non-numbers"
    if test is None:
        distinct = profile_drift.distinct_union(reference, current)
        small = distinct if distinct is not None and distinct <= 5 else None
        test = default_test(kind, reference.num_values, small)  # type: ignore[arg-type]
    try:
        outcome = profile_drift.run_profile_test(
            test,
            reference,
            current,
            kind=kind,  # type: ignore[arg-type]
            threshold=threshold,
        )
    except ValueError as error:
        return str(error)
    return _feature_result(
        name,
        kind,
        outcome,
        reference.num_rows,
        current.num_rows,
        reference.num_values,
        current.num_values,
        profile_plot(reference, current, kind, plot_bins),
    )


def profile_plot(
    reference: FeatureProfile, current: FeatureProfile, kind: str, bins: int
) -> dict[str, Any]:
    """Plot data like `histogram_plot` or `category_plot`, from profiles."""
    if kind == "numeric":
        low, high = min(reference.minimum, current.minimum), max(reference.maximum, current.maximum)
        edges = np.histogram_bin_edges([low, high], bins)
        return _histogram(
            edges,
            profile_drift.sketch_histogram(reference, edges) / reference.num_numbers,
            profile_drift.sketch_histogram(current, edges) / current.num_numbers,
        )
    aligned = profile_drift.aligned_counts(reference, current)
    if aligned is None:
        return {"type": "categories", "categories": [], "reference": [], "current": []}
    return category_plot(*aligned)
