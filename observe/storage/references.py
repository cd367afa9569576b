"""Training (reference) data sets: their stored rows, feature types and whole-set profile."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from observe.db.models import ReferenceDataset, ReferenceRow
from observe.storage._sql import chunks

ROW_CHUNK = 5_000


@dataclass(frozen=True)
class ReferenceInfo:
    """A stored reference data set, without its rows and profile."""

    id: int
    model: str
    model_version: str
    name: str
    created_at: dt.datetime
    source: str | None
    num_rows: int
    num_rows_stored: int
    feature_types: dict[str, str]


def replace_reference_dataset(
    session: Session,
    *,
    model: str,
    model_version: str,
    name: str,
    source: str | None,
    num_rows: int,
    feature_types: dict[str, str],
    profile: bytes,
    rows: Sequence[dict[str, Any]],
    now: dt.datetime,
) -> int:
    """Store a reference data set, replacing one of the same model, version and name.

    Args:
        rows: the stored sample of rows (feature name -> JSON-ready value).
        profile: the serialised profile of all rows.

    Returns:
        The data set's id.
    """
    session.execute(
        delete(ReferenceDataset).where(
            ReferenceDataset.model == model,
            ReferenceDataset.model_version == model_version,
            ReferenceDataset.name == name,
        )
    )
    dataset = ReferenceDataset(
        model=model,
        model_version=model_version,
        name=name,
        created_at=now,
        source=source,
        num_rows=num_rows,
        num_rows_stored=len(rows),
        feature_types=feature_types,
        profile=profile,
    )
    session.add(dataset)
    session.flush()
    for start, chunk in enumerate(chunks(rows, ROW_CHUNK)):
        offset = start * ROW_CHUNK
        values = [
            {"dataset_id": dataset.id, "row_index": offset + i, "features": row}
            for i, row in enumerate(chunk)
        ]
        session.execute(insert(ReferenceRow), values)
    return dataset.id


def list_reference_datasets(
    session: Session, *, model: str | None = None, model_version: str | None = None
) -> list[ReferenceInfo]:
    """Reference data sets, newest first."""
    query = select(ReferenceDataset).order_by(
        ReferenceDataset.created_at.desc(), ReferenceDataset.id.desc()
    )
    if model is not None:
        query = query.where(ReferenceDataset.model == model)
    if model_version is not None:
        query = query.where(ReferenceDataset.model_version == model_version)
    return [_info(row) for row in session.scalars(query)]


def find_reference_dataset(
    session: Session, *, model: str, model_version: str | None = None, name: str | None = None
) -> ReferenceInfo | None:
    """The newest reference data set of a model matching the version and name given."""
    query = (
        select(ReferenceDataset)
        .where(ReferenceDataset.model == model)
        .order_by(ReferenceDataset.created_at.desc(), ReferenceDataset.id.desc())
        .limit(1)
    )
    if model_version is not None:
        query = query.where(ReferenceDataset.model_version == model_version)
    if name is not None:
        query = query.where(ReferenceDataset.name == name)
    row = session.scalars(query).first()
    return None if row is None else _info(row)


def load_reference_profile(session: Session, dataset_id: int) -> bytes | None:
    """The serialised profile of all rows of a reference data set."""
    return session.scalar(select(ReferenceDataset.profile).where(ReferenceDataset.id == dataset_id))


def load_reference_rows(
    session: Session, dataset_id: int, *, sample_every: int = 1
) -> pd.DataFrame:
    """The stored rows of a reference data set, one column per feature, in stored order;
    with `sample_every` k > 1, every k-th row (a sample spread over the whole file)."""
    query = (
        select(ReferenceRow.features)
        .where(ReferenceRow.dataset_id == dataset_id)
        .order_by(ReferenceRow.row_index)
    )
    if sample_every > 1:
        query = query.where(ReferenceRow.row_index % sample_every == 0)
    return pd.DataFrame.from_records(list(session.scalars(query)))


def _info(row: ReferenceDataset) -> ReferenceInfo:
    return ReferenceInfo(
        id=row.id,
        model=row.model,
        model_version=row.model_version,
        name=row.name,
        created_at=row.created_at,
        source=row.source,
        num_rows=row.num_rows,
        num_rows_stored=row.num_rows_stored,
        feature_types=dict(row.feature_types or {}),
    )
