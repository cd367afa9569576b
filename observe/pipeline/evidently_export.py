"""Export a drift result as an Evidently HTML report.

Evidently needs raw rows, so the report is computed on the rows behind the result: the
reference's stored rows (or the baseline window's records) and the window's records, at most
`MAX_ROWS` of each (the newest). Each column uses the test and threshold observe used, so the
report shows the same analysis. Evidently is an optional dependency
(``pip install 'observe[drift]'``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from observe.db.engine import Database
from observe.pipeline.drift import DriftReport, features_frame, load_reference_side
from observe.storage import feature_profiles as profile_store

MAX_ROWS = 200_000


class ExportError(Exception):
    """The report cannot be written; says why."""


def write_report(db: Database, report: DriftReport, path: Path) -> None:
    """Write `report` as an Evidently HTML report to `path`."""
    try:
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset
    except ImportError:
        raise ExportError("HTML reports need Evidently: pip install 'observe[drift]'") from None
    reference, current = _frames(db, report)
    features = [
        f for f in report.result.features if f.feature in reference and f.feature in current
    ]
    if not features:
        raise ExportError("no raw rows left for the features of this result (past retention?)")
    columns = [f.feature for f in features]
    definition = DataDefinition(
        numerical_columns=[f.feature for f in features if f.kind == "numeric"],
        categorical_columns=[f.feature for f in features if f.kind == "categorical"],
    )
    preset = DataDriftPreset(
        columns=columns,
        drift_share=report.result.drift_share,
        per_column_method={f.feature: f.test for f in features},
        per_column_threshold={f.feature: f.threshold for f in features},
    )
    snapshot = Report([preset]).run(
        Dataset.from_pandas(_typed(current[columns], features), data_definition=definition),
        Dataset.from_pandas(_typed(reference[columns], features), data_definition=definition),
    )
    try:
        snapshot.save_html(str(path))
    except OSError as error:
        raise ExportError(f"cannot write {path}: {error}") from None


def _frames(db: Database, report: DriftReport) -> tuple[pd.DataFrame, pd.DataFrame]:
    with db.sessions() as session:
        rows = profile_store.load_window_features(
            session,
            model=report.model,
            start=report.start,
            end=report.end,
            model_version=report.model_version,
            limit=MAX_ROWS,
        )
        baseline = report.baseline
        if baseline.reference is None:
            base_start, base_end = baseline.window()
            base_rows = profile_store.load_window_features(
                session,
                model=report.model,
                start=base_start,
                end=base_end,
                model_version=report.model_version,
                limit=MAX_ROWS,
            )
    current = features_frame(rows) if not rows.empty else pd.DataFrame()
    if baseline.reference is not None:
        reference = load_reference_side(db, baseline.reference, raw=True).frame
    else:
        reference = features_frame(base_rows) if not base_rows.empty else pd.DataFrame()
    return reference if reference is not None else pd.DataFrame(), current


def _typed(frame: pd.DataFrame, features: Any) -> pd.DataFrame:
    """Numeric columns as floats, categorical ones as strings, so Evidently's column types
    are the ones observe used."""
    out = frame.copy()
    for feature in features:
        column = out[feature.feature]
        if feature.kind == "numeric":
            out[feature.feature] = pd.to_numeric(column, errors="coerce").astype(float)
        else:
            out[feature.feature] = column.map(lambda v: None if pd.isna(v) else str(v))
    return out
