"""Inference records and labels: idempotent bulk insert, filtered and paginated reads."""

from __future__ import annotations

import base64
import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Text, and_, bindparam, func, insert, select, text, tuple_
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from observe.db.models import InferenceRecord, Label
from observe.schemas.record_table import KEY_SEPARATOR, RecordTable, as_record_table
from observe.schemas.records import InferenceRecordIn, LabelIn
from observe.storage._copy import copy_text
from observe.storage._sql import chunks, dialect_of, upsert

#: Bytes handed to the driver per COPY write.
_COPY_CHUNK_BYTES = 1 << 20

_COPY_COLUMNS = (
    "model",
    "model_version",
    "request_id",
    "timestamp",
    "latency_ms",
    "status",
    "error",
    "features",
    "prediction",
    "tags",
    "input_size",
    "trace_id",
)
_JSON_COLUMNS = ("features", "prediction", "tags")


@dataclass(frozen=True)
class RecordInsertResult:
    """Outcome of `insert_records`: which of the given records were stored now."""

    new_positions: list[int]
    num_duplicates: int

    @property
    def num_new(self) -> int:
        return len(self.new_positions)


def insert_records(
    session: Session,
    records: RecordTable | Sequence[InferenceRecordIn],
    *,
    received_at: dt.datetime,
) -> RecordInsertResult:
    """Store the records whose (model, request_id) is not stored yet.

    A repeat, within the batch or of an earlier batch, is counted as a duplicate and not
    written. Inline labels of new records go to `labels`. The caller owns the transaction.

    Args:
        records: a RecordTable, or validated records (converted to one here).

    Returns:
        Positions (in `records`) of the records stored now, and the number of duplicates.
    """
    table = as_record_table(records)
    candidates = first_occurrences(table.keys())
    if dialect_of(session) == "postgresql":
        new_positions = _insert_postgres(session, table, candidates, received_at)
    else:
        new_positions = _insert_sqlite(session, table, candidates, received_at)
    _insert_inline_labels(session, table.take(new_positions), received_at)
    return RecordInsertResult(new_positions.tolist(), len(table) - len(new_positions))


def first_occurrences(keys: pa.Array) -> npt.NDArray[np.int64]:
    """Positions of the first occurrence of each distinct key, in order."""
    unique = pc.unique(keys)
    if len(unique) == len(keys):
        return np.arange(len(keys), dtype=np.int64)
    codes = pc.index_in(keys, value_set=unique).to_numpy()
    _, first = np.unique(codes, return_index=True)
    return np.sort(first).astype(np.int64)


def _insert_sqlite(
    session: Session,
    table: RecordTable,
    positions: npt.NDArray[np.int64],
    received_at: dt.datetime,
) -> npt.NDArray[np.int64]:
    # SQLite write transactions begin IMMEDIATE: nobody can insert between check and write.
    candidates = table.take(positions)
    models = candidates.column("model").to_pylist()
    request_ids = candidates.column("request_id").to_pylist()
    stored: set[tuple[str, str]] = set()
    by_model: dict[str, list[str]] = defaultdict(list)
    for model, request_id in zip(models, request_ids, strict=True):
        by_model[model].append(request_id)
    for model, ids in by_model.items():
        for chunk in chunks(ids):
            query = select(InferenceRecord.request_id).where(
                InferenceRecord.model == model, InferenceRecord.request_id.in_(chunk)
            )
            stored.update((model, request_id) for request_id in session.scalars(query))
    is_fresh = np.fromiter(
        (key not in stored for key in zip(models, request_ids, strict=True)),
        dtype=bool,
        count=len(models),
    )
    if is_fresh.any():
        rows = _sqlite_rows(candidates.take(np.flatnonzero(is_fresh)), received_at)
        session.execute(_SQLITE_INSERT, rows)
    return positions[is_fresh]


# JSON fields arrive as JSON text: bound as text, so they are stored as is (SQLite keeps JSON
# as text). A missing value is stored as JSON null, as the JSON column type stores None.
_SQLITE_INSERT = insert(InferenceRecord).values(
    {name: bindparam(name, type_=Text()) for name in _JSON_COLUMNS}
)


def _sqlite_rows(table: RecordTable, received_at: dt.datetime) -> list[dict[str, Any]]:
    values = {name: table.column(name).to_pylist() for name in _COPY_COLUMNS}
    for name in _JSON_COLUMNS:
        values[name] = ["null" if text is None else text for text in values[name]]
    values["received_at"] = [received_at] * len(table)
    names = list(values)
    return [dict(zip(names, row, strict=True)) for row in zip(*values.values(), strict=True)]


def _insert_postgres(
    session: Session,
    table: RecordTable,
    positions: npt.NDArray[np.int64],
    received_at: dt.datetime,
) -> npt.NDArray[np.int64]:
    """COPY straight into the table; if a request id is already there (a retry), COPY into a
    staging table instead and insert from it with ON CONFLICT DO NOTHING.

    The fast path needs no lookup of existing ids, whose plan would depend on table
    statistics; both paths rely on the unique index alone.
    """
    if not len(positions):
        return positions
    payload = _copy_payload(table.take(positions), received_at)
    try:
        with session.begin_nested():
            _copy(session, "inference_records", payload)
        return positions
    except IntegrityError as error:
        if not isinstance(error.orig, psycopg.errors.UniqueViolation):
            raise
        new_keys = _insert_through_staging(session, payload)
    is_new = pc.is_in(table.keys().take(pa.array(positions)), value_set=new_keys)
    return positions[is_new.to_numpy(zero_copy_only=False)]


def _insert_through_staging(session: Session, payload: memoryview) -> pa.Array:
    """Keys (model NUL request_id) of the records the insert stored."""
    columns = ", ".join((*_COPY_COLUMNS, "received_at"))
    session.execute(
        text(
            "CREATE TEMPORARY TABLE observe_staging_records "
            "(LIKE inference_records INCLUDING DEFAULTS) ON COMMIT DROP"
        )
    )
    _copy(session, "observe_staging_records", payload)
    inserted = session.execute(
        text(
            f"INSERT INTO inference_records ({columns}) "
            f"SELECT {columns} FROM observe_staging_records "
            "ON CONFLICT (model, request_id) DO NOTHING RETURNING model, request_id"
        )
    )
    new_keys = [f"{model}{KEY_SEPARATOR}{request_id}" for model, request_id in inserted]
    session.execute(text("DROP TABLE observe_staging_records"))
    return pa.array(new_keys, pa.string())


def _copy_payload(table: RecordTable, received_at: dt.datetime) -> memoryview:
    """The records in COPY's text format, in the column order of `_COPY_COLUMNS` followed by
    received_at. Timestamps go as ISO 8601 text in UTC, floats as their shortest round-trip
    text, JSON fields as their JSON text, which Postgres parses into JSONB."""
    columns: list[pa.Array | str] = [table.column(name) for name in _COPY_COLUMNS]
    return copy_text([*columns, received_at.isoformat()], len(table))


def _copy(session: Session, table: str, payload: memoryview) -> None:
    connection = session.connection().connection.driver_connection
    assert isinstance(connection, psycopg.Connection)
    columns = ", ".join((*_COPY_COLUMNS, "received_at"))
    statement = f"COPY {table} ({columns}) FROM STDIN"
    try:
        with connection.cursor() as cursor, cursor.copy(statement) as copy:
            for start in range(0, len(payload), _COPY_CHUNK_BYTES):
                copy.write(payload[start : start + _COPY_CHUNK_BYTES])
    except psycopg.Error as error:
        # The driver connection bypasses SQLAlchemy's wrapping of driver errors: wrap them as it
        # would, so that callers see one hierarchy (a deadlock or a lost connection is an
        # OperationalError that the batch writer retries).
        raise DBAPIError.instance(statement, None, error, psycopg.Error) from error


def _insert_inline_labels(session: Session, table: RecordTable, received_at: dt.datetime) -> None:
    labelled = table.columns.filter(pc.is_valid(table.column("label")))
    if not labelled.num_rows:
        return
    rows = [
        {
            "model": model,
            "request_id": request_id,
            "label": orjson.loads(label),
            "timestamp": timestamp,
            "received_at": received_at,
        }
        for model, request_id, label, timestamp in zip(
            labelled.column("model").to_pylist(),
            labelled.column("request_id").to_pylist(),
            labelled.column("label").to_pylist(),
            labelled.column("timestamp").to_pylist(),
            strict=True,
        )
    ]
    _upsert_labels(session, rows)


def upsert_labels(
    session: Session, labels: Sequence[LabelIn], *, received_at: dt.datetime
) -> tuple[int, int]:
    """Store labels; a label replaces a stored one for the same request unless it is older or
    has the same value (a retry), which leaves the stored label and its time as they were.

    Returns:
        (number of labels new or changed, number left as they were).
    """
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for label in labels:
        row = {
            "model": label.model,
            "request_id": label.request_id,
            "label": label.label,
            "timestamp": label.timestamp or received_at,
            "received_at": received_at,
        }
        key = (label.model, label.request_id)
        if key not in latest or latest[key]["timestamp"] <= row["timestamp"]:
            latest[key] = row
    num_written = _upsert_labels(session, list(latest.values()))
    return num_written, len(labels) - num_written


def _upsert_labels(session: Session, rows: list[dict[str, Any]]) -> int:
    if not rows:
        return 0
    statement = upsert(session, Label.__table__)
    excluded = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=["model", "request_id"],
        set_={
            "label": excluded.label,
            "timestamp": excluded.timestamp,
            "received_at": excluded.received_at,
        },
        # The same value again (a retried request, stamped with its new arrival time) is a
        # duplicate, not a change: only a different value that is not older replaces a label.
        where=and_(Label.label != excluded.label, Label.timestamp <= excluded.timestamp),
    ).returning(Label.id)
    return len(session.execute(statement, rows).all())


@dataclass(frozen=True)
class RecordPage:
    """One page of records (newest first) and the cursor of the next page, if any."""

    items: list[dict[str, Any]]
    next_cursor: str | None


def load_records(
    session: Session,
    *,
    model: str,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    model_version: str | None = None,
    tags: dict[str, str] | None = None,
    status: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> RecordPage:
    """Records of a model, newest first, filtered by window, version, tags and status.

    Pagination is by keyset: pass the returned `next_cursor` to get the following page; pages
    stay consistent while new records arrive.
    """
    query = select(InferenceRecord, Label.label).outerjoin(
        Label,
        and_(Label.model == InferenceRecord.model, Label.request_id == InferenceRecord.request_id),
    )
    query = query.where(InferenceRecord.model == model)
    if start is not None:
        query = query.where(InferenceRecord.timestamp >= start)
    if end is not None:
        query = query.where(InferenceRecord.timestamp < end)
    if model_version is not None:
        query = query.where(InferenceRecord.model_version == model_version)
    if status is not None:
        query = query.where(InferenceRecord.status == status)
    for key, value in (tags or {}).items():
        query = query.where(InferenceRecord.tags[key].as_string() == value)
    if cursor is not None:
        timestamp, record_id = decode_cursor(cursor)
        query = query.where(
            tuple_(InferenceRecord.timestamp, InferenceRecord.id) < tuple_(timestamp, record_id)
        )
    query = query.order_by(InferenceRecord.timestamp.desc(), InferenceRecord.id.desc()).limit(
        limit + 1
    )
    rows = session.execute(query).all()
    items = [_record_dict(record, label) for record, label in rows[:limit]]
    next_cursor = encode_cursor(rows[limit - 1][0]) if len(rows) > limit else None
    return RecordPage(items, next_cursor)


def _record_dict(record: InferenceRecord, label: Any) -> dict[str, Any]:
    return {
        "model": record.model,
        "model_version": record.model_version,
        "request_id": record.request_id,
        "timestamp": record.timestamp,
        "latency_ms": record.latency_ms,
        "status": record.status,
        "error": record.error,
        "features": record.features,
        "prediction": record.prediction,
        "label": label,
        "tags": record.tags,
        "input_size": record.input_size,
        "trace_id": record.trace_id,
        "received_at": record.received_at,
    }


def find_models_of_traces(session: Session, trace_ids: Sequence[str]) -> dict[str, str]:
    """The model of the records that carry each trace id (the first by name, should records of
    several models carry one); trace ids no record carries are absent."""
    models: dict[str, str] = {}
    for chunk in chunks(sorted(set(trace_ids))):
        query = (
            select(InferenceRecord.trace_id, func.min(InferenceRecord.model))
            .where(InferenceRecord.trace_id.in_(chunk))
            .group_by(InferenceRecord.trace_id)
        )
        models.update((str(trace_id), model) for trace_id, model in session.execute(query).all())
    return models


def load_records_of_trace(
    session: Session, trace_id: str, *, limit: int = 100
) -> list[dict[str, Any]]:
    """The records (with their labels) that carry a trace id, oldest first."""
    query = (
        select(InferenceRecord, Label.label)
        .outerjoin(
            Label,
            and_(
                Label.model == InferenceRecord.model,
                Label.request_id == InferenceRecord.request_id,
            ),
        )
        .where(InferenceRecord.trace_id == trace_id)
        .order_by(InferenceRecord.timestamp, InferenceRecord.id)
        .limit(limit)
    )
    return [_record_dict(record, label) for record, label in session.execute(query)]


def encode_cursor(record: InferenceRecord) -> str:
    raw = orjson.dumps([record.timestamp.isoformat(), record.id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, int]:
    """Inverse of `encode_cursor`; ValueError for anything it did not produce."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        timestamp, record_id = orjson.loads(raw)
        parsed = dt.datetime.fromisoformat(timestamp)
        if parsed.tzinfo is None or not isinstance(record_id, int) or isinstance(record_id, bool):
            raise ValueError
        if not 0 <= record_id < 2**63:  # ids are signed 64-bit integers on both databases
            raise ValueError
        return parsed, record_id
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise ValueError("invalid cursor: pass the next_cursor of a previous page") from None
