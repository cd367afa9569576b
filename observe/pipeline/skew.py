"""Training-serving skew: a model version's serving window against its training reference."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from analyzers.skew import SkewResult, detect_skew
from observe.config import Settings
from observe.db.engine import Database
from observe.pipeline.drift import DriftInputError, feature_kinds, features_frame
from observe.storage import feature_profiles as profile_store
from observe.storage import references as reference_store
from observe.storage.references import ReferenceInfo

REQUEST_ID = "request_id"


@dataclass(frozen=True)
class SkewQuery:
    """`join_key`: "request_id" (the records' request ids against a reference column of that
    name) or a feature present on both sides; None skips feature-value skew. `max_rows`: the
    most (newest) records of the window read, `drift_raw_max_rows` when None."""

    model: str
    start: dt.datetime
    end: dt.datetime
    model_version: str | None = None
    reference: str | None = None
    join_key: str | None = None
    tests: Mapping[str, str] = field(default_factory=dict)
    thresholds: Mapping[str, float] = field(default_factory=dict)
    max_rows: int | None = None


@dataclass(frozen=True)
class SkewReport:
    model: str
    model_version: str | None
    start: dt.datetime
    end: dt.datetime
    reference: ReferenceInfo
    num_rows_serving: int
    result: SkewResult

    def to_dict(self) -> dict[str, Any]:
        ref = self.reference
        return {
            "model": self.model,
            "model_version": self.model_version,
            "window": {"start": self.start, "end": self.end},
            "reference": {
                "id": ref.id,
                "name": ref.name,
                "model_version": ref.model_version,
                "num_rows": ref.num_rows,
                "num_rows_stored": ref.num_rows_stored,
            },
            "num_rows_serving": self.num_rows_serving,
            **self.result.to_dict(),
        }


def analyze_skew(db: Database, query: SkewQuery, *, settings: Settings) -> SkewReport:
    """Schema, distribution and feature-value skew of a serving window (its newest
    `query.max_rows`, else `drift_raw_max_rows`, records) against the reference's stored
    rows."""
    if query.start >= query.end:
        raise DriftInputError("start must be before end")
    with db.sessions() as session:
        reference = reference_store.find_reference_dataset(
            session, model=query.model, model_version=query.model_version, name=query.reference
        )
        if reference is None:
            raise DriftInputError(f"no reference data set for {query.model}: import one first")
        training = reference_store.load_reference_rows(session, reference.id)
        rows = profile_store.load_window_features(
            session,
            model=query.model,
            start=query.start,
            end=query.end,
            model_version=query.model_version,
            limit=query.max_rows or settings.drift_raw_max_rows,
        )
    if rows.empty:
        raise DriftInputError(f"no records of {query.model} in the window")
    serving = features_frame(rows)
    join_key = query.join_key
    if join_key == REQUEST_ID and REQUEST_ID not in serving.columns:
        serving[REQUEST_ID] = rows[REQUEST_ID].to_numpy()
    if join_key is not None and join_key not in training.columns:
        raise DriftInputError(f"the reference has no column {join_key!r} to join on")
    features = [c for c in training.columns if c in serving.columns and c != join_key]
    types = {k: v for k, v in reference.feature_types.items() if k != join_key}
    try:
        result = detect_skew(
            training,
            serving,
            join_key=join_key,
            reference_types=types,
            kinds=feature_kinds(training[features], serving[features]),
            tests=dict(query.tests),
            thresholds=dict(query.thresholds),
            drift_share=settings.drift_share,
        )
    except ValueError as error:
        raise DriftInputError(str(error)) from None
    return SkewReport(
        query.model, query.model_version, query.start, query.end, reference, len(rows), result
    )
