"""Demo training data: a reference data set per model version, drawn from the distributions
the models were trained on (so churn-classifier's drifted `monthly_charges` shows as skew)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import pandas as pd

from observe.db.engine import Database
from observe.demo.traffic import churn_features, fraud_features, recsys_features
from observe.pipeline.references import ReferenceSummary, store_reference

TRAINING_ROWS = 20_000
#: (model, version) -> the features it was trained on.
TRAINING: dict[tuple[str, str], Callable[[np.random.Generator, int], dict[str, list[object]]]] = {
    ("fraud-scorer", "v6"): fraud_features,
    ("fraud-scorer", "v7"): fraud_features,
    ("recsys-ranker", "v3"): recsys_features,
    ("churn-classifier", "2024.11"): churn_features,
}


def store_training_references(
    db: Database, *, rng: np.random.Generator, now: dt.datetime, max_rows: int
) -> list[ReferenceSummary]:
    """Store one training reference per demo model version."""
    summaries = []
    for (model, version), features in TRAINING.items():
        frame = pd.DataFrame(features(rng, TRAINING_ROWS))
        summaries.append(
            store_reference(
                db,
                frame,
                model=model,
                model_version=version,
                name=f"training-{version}",
                source="demo training set",
                max_rows=max_rows,
                now=now,
            )
        )
    return summaries
