"""Inference records and labels: idempotent bulk insert, filtered and paginated reads."""

from __future__ import annotations

import base64
import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg
from sqlalchemy import and_, func, insert, select, text, tuple_
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from observe.db.models import InferenceRecord, Label
from observe.schemas.records import InferenceRecordIn, LabelIn
from observe.storage._sql import chunks, dialect_of, upsert

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
    "received_at",
)


@dataclass(frozen=True)
class RecordInsertResult:
    """Outcome of `insert_records`: which of the given records were stored now."""

    new_positions: list[int]
    num_duplicates: int

    @property
    def num_new(self) -> int:
        return len(self.new_positions)


def insert_records(
    session: Session, records: Sequence[InferenceRecordIn], *, received_at: dt.datetime
) -> RecordInsertResult:
    """Store the records whose (model, request_id) is not stored yet.

    A repeat, within the batch or of an earlier batch, is counted as a duplicate and not
    written. Inline labels of new records go to `labels`. The caller owns the transaction.

    Returns:
        Positions (in `records`) of the records stored now, and the number of duplicates.
    """
    candidates = _first_occurrences(records)
    if dialect_of(session) == "postgresql":
        new_positions = _insert_postgres(session, records, candidates, received_at)
    else:
        new_positions = _insert_sqlite(session, records, candidates, received_at)
    _insert_inline_labels(session, [records[i] for i in new_positions], received_at)
    return RecordInsertResult(new_positions, len(records) - len(new_positions))


def _first_occurrences(records: Sequence[InferenceRecordIn]) -> list[int]:
    seen: set[tuple[str, str]] = set()
    positions = []
    for position, record in enumerate(records):
        key = (record.model, record.request_id)
        if key not in seen:
            seen.add(key)
            positions.append(position)
    return positions


def _insert_sqlite(
    session: Session,
    records: Sequence[InferenceRecordIn],
    positions: list[int],
    received_at: dt.datetime,
) -> list[int]:
    # SQLite write transactions begin IMMEDIATE: nobody can insert between check and write.
    stored: set[tuple[str, str]] = set()
    by_model: dict[str, list[str]] = defaultdict(list)
    for i in positions:
        by_model[records[i].model].append(records[i].request_id)
    for model, request_ids in by_model.items():
        for chunk in chunks(request_ids):
            query = select(InferenceRecord.request_id).where(
                InferenceRecord.model == model, InferenceRecord.request_id.in_(chunk)
            )
            stored.update((model, request_id) for request_id in session.scalars(query))
    fresh = [i for i in positions if (records[i].model, records[i].request_id) not in stored]
    if fresh:
        rows = [_row(records[i], received_at) for i in fresh]
        session.execute(insert(InferenceRecord.__table__), rows)
    return fresh


def _insert_postgres(
    session: Session,
    records: Sequence[InferenceRecordIn],
    positions: list[int],
    received_at: dt.datetime,
) -> list[int]:
    """COPY straight into the table; if a request id is already there (a retry), COPY into a
    staging table instead and insert from it with ON CONFLICT DO NOTHING.

    The fast path needs no lookup of existing ids, whose plan would depend on table
    statistics; both paths rely on the unique index alone.
    """
    if not positions:
        return []
    try:
        with session.begin_nested():
            _copy(session, "inference_records", records, positions, received_at)
        return positions
    except IntegrityError as error:
        if not isinstance(error.orig, psycopg.errors.UniqueViolation):
            raise
        return _insert_through_staging(session, records, positions, received_at)


def _insert_through_staging(
    session: Session,
    records: Sequence[InferenceRecordIn],
    positions: list[int],
    received_at: dt.datetime,
) -> list[int]:
    columns = ", ".join(_COPY_COLUMNS)
    session.execute(
        text(
            "CREATE TEMPORARY TABLE observe_staging_records "
            "(LIKE inference_records INCLUDING DEFAULTS) ON COMMIT DROP"
        )
    )
    _copy(session, "observe_staging_records", records, positions, received_at)
    inserted = session.execute(
        text(
            f"INSERT INTO inference_records ({columns}) "
            f"SELECT {columns} FROM observe_staging_records "
            "ON CONFLICT (model, request_id) DO NOTHING RETURNING model, request_id"
        )
    )
    new_keys = {(model, request_id) for model, request_id in inserted}
    session.execute(text("DROP TABLE observe_staging_records"))
    return [i for i in positions if (records[i].model, records[i].request_id) in new_keys]


def _copy(
    session: Session,
    table: str,
    records: Sequence[InferenceRecordIn],
    positions: list[int],
    received_at: dt.datetime,
) -> None:
    connection = session.connection().connection.driver_connection
    assert isinstance(connection, psycopg.Connection)
    statement = f"COPY {table} ({', '.join(_COPY_COLUMNS)}) FROM STDIN"
    received_text = received_at.isoformat()
    try:
        with connection.cursor() as cursor, cursor.copy(statement) as copy:
            for position in positions:
                copy.write_row(_copy_row(records[position], received_text))
    except psycopg.Error as error:
        # The driver connection bypasses SQLAlchemy's wrapping of driver errors: wrap them as it
        # would, so that callers see one hierarchy (a deadlock or a lost connection is an
        # OperationalError that the batch writer retries).
        raise DBAPIError.instance(statement, None, error, psycopg.Error) from error


def _copy_row(record: InferenceRecordIn, received_at: str) -> tuple[Any, ...]:
    """One row of `_COPY_COLUMNS`, in COPY's text format: JSON columns as text that Postgres
    parses into JSONB, timestamps as ISO 8601 with their UTC offset (formatting them here is
    several times cheaper than the driver's datetime adapter, and ingest is bound by it)."""
    return (
        record.model,
        record.model_version,
        record.request_id,
        record.timestamp.isoformat(),
        record.latency_ms,
        record.status,
        record.error,
        _json_text(record.features),
        _json_text(record.prediction),
        _json_text(record.tags),
        record.input_size,
        record.trace_id,
        received_at,
    )


def _json_text(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _row(record: InferenceRecordIn, received_at: dt.datetime) -> dict[str, Any]:
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
        "tags": record.tags,
        "input_size": record.input_size,
        "trace_id": record.trace_id,
        "received_at": received_at,
    }


def _insert_inline_labels(
    session: Session, records: Sequence[InferenceRecordIn], received_at: dt.datetime
) -> None:
    labels = [
        {
            "model": r.model,
            "request_id": r.request_id,
            "label": r.label,
            "timestamp": r.timestamp,
            "received_at": received_at,
        }
        for r in records
        if r.label is not None
    ]
    _upsert_labels(session, labels)


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
        models.update(dict(session.execute(query).all()))
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
