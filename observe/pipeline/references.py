"""Importing training reference data sets (Parquet or CSV) and whylogs profiles.

A reference keeps a profile of all its rows (what drift against it reads) and up to
`reference_max_rows` of its rows (what skew's feature-value comparison and Evidently reports
read): a uniform sample with a fixed seed when the file has more.
"""

from __future__ import annotations

import datetime as dt
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from analyzers.feature_profiles import ProfileMap, profile_frame, serialize_profile_map
from analyzers.skew import value_type
from observe.db.engine import Database
from observe.storage import references as reference_store

SAMPLE_SEED = 0
MAX_NAME_LENGTH = 200


class ReferenceError(ValueError):
    """The reference data cannot be used; the message says why."""


@dataclass(frozen=True)
class ReferenceSummary:
    id: int
    model: str
    model_version: str
    name: str
    num_rows: int
    num_rows_stored: int
    feature_types: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def read_reference_bytes(data: bytes, fmt: str) -> pd.DataFrame:
    """A data frame from Parquet or CSV bytes; ReferenceError when unreadable."""
    try:
        if fmt == "parquet":
            table = pq.read_table(io.BytesIO(data))
        elif fmt == "csv":
            table = pa_csv.read_csv(io.BytesIO(data))
        else:
            raise ReferenceError(f"unknown reference format {fmt!r}: use parquet or csv")
    except (pa.ArrowInvalid, OSError) as error:
        raise ReferenceError(f"not a readable {fmt} file: {error}") from None
    return _to_frame(table)


def read_reference_file(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise ReferenceError(f"{path} does not exist or is not a file")
    suffix = path.suffix.lower()
    fmt = "parquet" if suffix in (".parquet", ".pq") else "csv" if suffix == ".csv" else None
    if fmt is None:
        raise ReferenceError(f"cannot tell the format of {path.name}: use .parquet or .csv")
    return read_reference_bytes(path.read_bytes(), fmt)


def _to_frame(table: pa.Table) -> pd.DataFrame:
    for field in table.schema:
        if pa.types.is_nested(field.type) or pa.types.is_binary(field.type):
            raise ReferenceError(
                f"column {field.name!r} has type {field.type}: features must be numbers, "
                "booleans or strings"
            )
    frame = table.to_pandas()
    for name in frame.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[name].dtype):
            frame[name] = frame[name].astype(str)
    return frame


def store_reference(
    db: Database,
    frame: pd.DataFrame,
    *,
    model: str,
    model_version: str,
    name: str,
    source: str | None,
    max_rows: int,
    now: dt.datetime,
) -> ReferenceSummary:
    """Profile every row, sample up to `max_rows` rows, and store both in one transaction."""
    _check_names(model, model_version, name, frame)
    profiles = profile_frame(frame)
    return store_reference_profiles(
        db,
        profiles,
        sample=_sample(frame, max_rows),
        num_rows=len(frame),
        feature_types={str(c): value_type(frame[c]) for c in frame.columns},
        model=model,
        model_version=model_version,
        name=name,
        source=source,
        now=now,
    )


def store_reference_profiles(
    db: Database,
    profiles: ProfileMap,
    *,
    sample: pd.DataFrame | None,
    num_rows: int,
    feature_types: dict[str, str],
    model: str,
    model_version: str,
    name: str,
    source: str | None,
    now: dt.datetime,
) -> ReferenceSummary:
    """Store a reference given by its profiles (and optionally a sample of rows)."""
    rows = _json_rows(sample) if sample is not None else []
    with db.write_sessions.begin() as session:
        dataset_id = reference_store.replace_reference_dataset(
            session,
            model=model,
            model_version=model_version,
            name=name,
            source=source,
            num_rows=num_rows,
            feature_types=feature_types,
            profile=serialize_profile_map(profiles),
            rows=rows,
            now=now,
        )
    return ReferenceSummary(
        dataset_id, model, model_version, name, num_rows, len(rows), feature_types
    )


def _check_names(model: str, model_version: str, name: str, frame: pd.DataFrame) -> None:
    for label, value in (("model", model), ("version", model_version), ("name", name)):
        if not value or len(value) > MAX_NAME_LENGTH or "\x00" in value:
            raise ReferenceError(f"{label} must have 1 to {MAX_NAME_LENGTH} characters and no NUL")
    if frame.empty or not len(frame.columns):
        raise ReferenceError("the reference data has no rows or no columns")
    for column in frame.columns:
        if not isinstance(column, str) or not column or len(column) > MAX_NAME_LENGTH:
            raise ReferenceError(f"column name {column!r} is not a usable feature name")


def _sample(frame: pd.DataFrame, max_rows: int) -> pd.DataFrame:
    if len(frame) <= max_rows:
        return frame
    rng = np.random.default_rng(SAMPLE_SEED)
    keep = np.sort(rng.choice(len(frame), size=max_rows, replace=False))
    return frame.iloc[keep]


def _json_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts: NaN and infinities become null, numpy scalars Python ones."""
    rows = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    return [{str(k): _json_value(v) for k, v in row.items()} for row in rows]


def _json_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
