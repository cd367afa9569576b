"""Importing whylogs profiles as a reference or as serving profiles.

A whylogs profile (collectors.whylogs) becomes one observe feature profile per column
(analyzers.feature_profiles.profile_from_summary): as a reference data set without stored rows
(drift against it reads its profile; feature-value skew needs rows and is not available), or
merged into the hourly serving profiles of the hour it covers, where it adds to what observe
profiled itself.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from analyzers.feature_profiles import FeatureProfile, ProfileMap, profile_from_summary
from collectors.whylogs import ColumnSummary, WhylogsFormatError, read_whylogs_profile
from observe.db.engine import Database
from observe.pipeline.profiling import store_profiles
from observe.pipeline.references import store_reference_profiles

MAX_EXACT_NUMBERS = 64


class WhylogsImportError(ValueError):
    """The whylogs profile cannot be imported; says why."""


def import_whylogs(
    db: Database,
    path: Path,
    *,
    model: str,
    model_version: str,
    as_reference: bool,
    name: str = "whylogs",
    hour: dt.datetime | None = None,
    now: dt.datetime,
) -> dict[str, Any]:
    """Import `path` as a reference named `name`, or as serving profiles of `hour` (default:
    the profile's dataset timestamp)."""
    try:
        source = read_whylogs_profile(path)
    except WhylogsFormatError as error:
        raise WhylogsImportError(str(error)) from None
    if not source.columns:
        raise WhylogsImportError(f"{path.name} has no columns")
    profiles = {name_: column_profile(col) for name_, col in source.columns.items()}
    num_rows = max(p.num_rows for p in profiles.values())
    if as_reference:
        summary = store_reference_profiles(
            db,
            profiles,
            sample=None,
            num_rows=num_rows,
            feature_types={n: _value_type(p) for n, p in profiles.items()},
            model=model,
            model_version=model_version,
            name=name,
            source=str(path),
            now=now,
        )
        return {"reference_id": summary.id, "num_features": len(profiles), "num_rows": num_rows}
    at = hour or source.dataset_timestamp
    if at is None:
        raise WhylogsImportError("the profile has no dataset timestamp: pass the hour it covers")
    hour_start = at.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    _merge_serving(db, model, model_version, hour_start, profiles, now)
    return {
        "hour_start": hour_start.isoformat(),
        "num_features": len(profiles),
        "num_rows": num_rows,
    }


def _value_type(profile: FeatureProfile) -> str:
    return profile.value_type


def column_profile(column: ColumnSummary) -> FeatureProfile:
    """An observe profile from a whylogs column summary."""
    items = column.frequent_items
    number_counts = None
    if column.num_numbers and column.num_integers == column.num_numbers and items:
        exact = all(lower == upper for _, _, lower, upper in items)
        total = sum(est for _, est, _, _ in items)
        if exact and total == column.num_numbers and len(items) <= MAX_EXACT_NUMBERS:
            number_counts = {float(v): int(est) for v, est, _, _ in items}
    others = (
        []
        if column.num_numbers and not (column.num_bools or column.num_strings)
        else [(_item_value(value, column), est) for value, est, _, _ in items]
    )
    return profile_from_summary(
        num_rows=column.num_rows,
        num_nulls=column.num_nulls,
        num_numbers=column.num_numbers,
        num_integers=column.num_integers,
        num_bools=column.num_bools,
        num_strings=column.num_strings,
        mean=column.mean,
        std=column.std,
        minimum=column.minimum,
        maximum=column.maximum,
        quantile_values=column.quantile_values,
        frequent_items=others,
        number_counts=number_counts,
    )


def _item_value(value: str, column: ColumnSummary) -> Any:
    if column.num_bools and not column.num_strings and value in ("True", "False"):
        return value == "True"
    return value


def _merge_serving(
    db: Database,
    model: str,
    model_version: str,
    hour_start: dt.datetime,
    profiles: ProfileMap,
    now: dt.datetime,
) -> None:
    hourly = {(model, model_version, hour_start, n): (p, p.num_rows) for n, p in profiles.items()}
    with db.write_sessions.begin() as session:
        store_profiles(session, hourly, now=now)
