"""`observe import`: files -> collectors.files (or collectors.otlp) -> validation -> the batch
writer.

Unlike the HTTP API, an import keeps going past bad rows: each is written with its reasons to a
rejects file, and the good rows are stored in batches (each batch all-or-nothing). Re-running an
import after a failure is safe: records already stored count as duplicates. Reading and
validating the next batch overlaps with writing the previous one.

Records in CSV and Parquet files are validated a column at a time (`observe.pipeline.columnar`);
only the rows those checks cannot vouch for go through the row model, which gives rejected rows
their reasons. Everything else is validated a row at a time.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ValidationError

from collectors.files import (
    FileFormat,
    Row,
    RowError,
    TableChunk,
    count_rows_hint,
    detect_format,
    has_tables,
    read_rows,
    read_tables,
    table_rows,
)
from collectors.otlp import FileRequest, read_trace_file
from observe.db.engine import Database
from observe.pipeline.columnar import validate_records
from observe.pipeline.ingest import IngestCounts
from observe.pipeline.spans import validate_spans
from observe.pipeline.writer import BatchKind, BatchWriter
from observe.schemas.common import describe_error, simplify_errors
from observe.schemas.record_table import RecordTable
from observe.schemas.records import EventIn, InferenceRecordIn, LabelIn, MetricSampleIn
from observe.schemas.spans import SpanIn

ITEM_TYPES: dict[BatchKind, type[BaseModel]] = {
    BatchKind.RECORDS: InferenceRecordIn,
    BatchKind.LABELS: LabelIn,
    BatchKind.EVENTS: EventIn,
    BatchKind.METRICS: MetricSampleIn,
}
IN_FLIGHT_BATCHES = 2
#: Concurrent batch transactions for records from CSV and Parquet on Postgres. Storing them is
#: bound by the server (JSONB parsing, index upkeep), which works on one core per connection:
#: with two connections one batch is parsed and indexed while the other is sent or committed
#: (about 40% more records a second on 2 cores). Everything else is written by one.
TABLE_WRITERS_POSTGRES = 2


@dataclass
class ImportSummary:
    path: str
    format: str
    kind: str
    num_rows: int = 0
    num_imported: int = 0
    num_duplicates: int = 0
    num_rejected: int = 0
    rejects_path: str | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class _Rejects:
    """Writes rejected rows, one JSON object per line, opening the file on the first one."""

    path: Path
    handle: IO[bytes] | None = None
    count: int = 0
    opened: list[Path] = field(default_factory=list)

    def add(self, number: int, errors: list[dict[str, Any]], data: Any) -> None:
        if self.handle is None:
            self.handle = self.path.open("wb")
            self.opened.append(self.path)
        line = {"row": number, "errors": errors, "data": data}
        self.handle.write(
            orjson.dumps(line, default=str, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n"
        )
        self.count += 1

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


@dataclass
class _InFlight:
    """Batches handed to the writer and not yet seen committed, oldest first.

    With more than one writer, batches commit in any order. A record repeated in two batches
    that are written at the same time would be stored by whichever gets there first (or make
    the two transactions wait on each other); dropping a repeat of a record in a batch still in
    flight keeps the first occurrence in the file, as writing one batch after another does.
    """

    max_batches: int
    pending: deque[tuple[Future[IngestCounts], pa.Array | None]] = field(default_factory=deque)

    def is_full(self) -> bool:
        return len(self.pending) >= self.max_batches

    def add(self, future: Future[IngestCounts], items: Sequence[Any] | RecordTable) -> None:
        keys = items.keys() if isinstance(items, RecordTable) else None
        self.pending.append((future, keys))

    def oldest(self) -> IngestCounts:
        """Wait for the oldest batch to commit; its counts."""
        return self.pending.popleft()[0].result()

    def drop_repeats(self, table: RecordTable, summary: ImportSummary) -> RecordTable:
        """`table` without records whose key is in a batch in flight (counted duplicates)."""
        in_flight = [keys for _, keys in self.pending if keys is not None]
        if not in_flight or not len(table):
            return table
        repeated = pc.is_in(table.keys(), value_set=pa.concat_arrays(in_flight))
        num_repeated = pc.sum(repeated).as_py() or 0
        if not num_repeated:
            return table
        summary.num_duplicates += num_repeated
        return table.take(np.flatnonzero(~repeated.to_numpy(zero_copy_only=False)))


def import_file(
    db: Database,
    path: Path,
    kind: BatchKind,
    *,
    rollup_tags: Sequence[str],
    fmt: str | None = None,
    batch_size: int = 5_000,
    rejects_path: Path | None = None,
    on_progress: Callable[[int, int | None], None] | None = None,
) -> ImportSummary:
    """Import one file of `kind` items.

    Args:
        fmt: jsonl, json, csv, parquet, or None to go by the suffix.
        rejects_path: where rejected rows go; default ``<file name>.rejects.jsonl`` in the
            current directory. Written only if some row is rejected.
        on_progress: called with (rows read so far, total rows if known) after each batch.

    Raises:
        collectors.files.FileFormatError: the file cannot be read as that format.
    """
    file_format = detect_format(path, fmt)
    total = count_rows_hint(path, file_format)
    summary = ImportSummary(path=str(path), format=file_format, kind=kind.value)
    rejects = _Rejects(rejects_path or Path.cwd() / f"{path.name}.rejects.jsonl")
    by_table = kind is BatchKind.RECORDS and has_tables(file_format)
    num_writers = TABLE_WRITERS_POSTGRES if by_table and db.dialect == "postgresql" else 1
    in_flight = _InFlight(num_writers + IN_FLIGHT_BATCHES - 1)
    writer = BatchWriter(
        db.write_sessions,
        rollup_tags=rollup_tags,
        num_threads=num_writers,
        max_queued_items=in_flight.max_batches * batch_size,
    )
    if by_table:
        batches = _record_tables(path, file_format, batch_size, rejects, rollup_tags)
    else:
        batches = _row_batches(path, file_format, kind, batch_size, rejects)
    started = time.perf_counter()
    writer.start()
    try:
        for num_rows, items in batches:
            summary.num_rows += num_rows
            if isinstance(items, RecordTable):
                items = in_flight.drop_repeats(items, summary)
            if len(items):
                if in_flight.is_full():
                    _account(summary, in_flight.oldest())
                in_flight.add(writer.submit(kind, items), items)
            if on_progress is not None:
                on_progress(summary.num_rows, total)
        while in_flight.pending:
            _account(summary, in_flight.oldest())
    finally:
        writer.stop()
        rejects.close()
        summary.num_rejected = rejects.count
        summary.rejects_path = str(rejects.opened[0]) if rejects.opened else None
        summary.seconds = time.perf_counter() - started
    return summary


Batches = Iterator[tuple[int, Sequence[Any] | RecordTable]]


def _row_batches(
    path: Path, file_format: FileFormat, kind: BatchKind, batch_size: int, rejects: _Rejects
) -> Batches:
    """(rows read, valid items) per chunk of the file, validated a row at a time."""
    for chunk in read_rows(path, file_format, chunk_size=batch_size):
        yield len(chunk), _validate(chunk, ITEM_TYPES[kind], rejects)


def _record_tables(
    path: Path,
    file_format: FileFormat,
    batch_size: int,
    rejects: _Rejects,
    rollup_tags: Sequence[str],
) -> Batches:
    """(rows read, valid records) per chunk of a CSV or Parquet file, validated by column."""
    for chunk in read_tables(path, file_format, chunk_size=batch_size):
        yield chunk.table.num_rows, _validate_table(chunk, rejects, rollup_tags)


def _validate_table(
    chunk: TableChunk, rejects: _Rejects, rollup_tags: Sequence[str]
) -> RecordTable:
    """The chunk's valid records in file order; the row model decides on the rows the columnar
    checks did not vouch for."""
    checked = validate_records(chunk.table, tag_keys=rollup_tags)
    if not len(checked.unsure):
        return checked.records
    accepted: list[InferenceRecordIn] = []
    positions: list[int] = []
    rows = table_rows(chunk, checked.unsure.tolist())
    for position, row in zip(checked.unsure.tolist(), rows, strict=True):
        item = _validate_row(row, InferenceRecordIn, rejects)
        if item is not None:
            accepted.append(item)
            positions.append(position)
    if not accepted:
        return checked.records
    merged = RecordTable.concat(
        [checked.records, RecordTable.from_records(accepted, tag_keys=rollup_tags)]
    )
    order = np.argsort(np.concatenate([checked.positions, positions]), kind="stable")
    return merged.take(order)


def _validate(
    chunk: list[Row | RowError], item_type: type[BaseModel], rejects: _Rejects
) -> list[Any]:
    items = [_validate_row(row, item_type, rejects) for row in chunk]
    return [item for item in items if item is not None]


def _validate_row(row: Row | RowError, item_type: type[BaseModel], rejects: _Rejects) -> Any:
    """The row as a valid item, or None after writing it to the rejects with its reasons."""
    if isinstance(row, RowError):
        rejects.add(row.number, [{"field": None, "message": row.message}], row.raw)
        return None
    try:
        return item_type.model_validate(row.data)
    except ValidationError as error:
        rejects.add(row.number, _reasons(error), row.data)
        return None


def _reasons(error: ValidationError) -> list[dict[str, Any]]:
    details = simplify_errors(error.errors())
    return [dict(zip(("field", "message"), describe_error(d), strict=True)) for d in details]


def _account(summary: ImportSummary, counts: IngestCounts) -> None:
    summary.num_imported += counts.new
    summary.num_duplicates += counts.duplicates


class _Submitter:
    """Hands batches to a writer, keeping at most IN_FLIGHT_BATCHES of them unanswered."""

    def __init__(self, writer: BatchWriter, kind: BatchKind, summary: ImportSummary) -> None:
        self._writer = writer
        self._kind = kind
        self._summary = summary
        self._pending: deque[Future[IngestCounts]] = deque()

    def submit(self, items: Sequence[Any]) -> None:
        if len(self._pending) >= IN_FLIGHT_BATCHES:
            _account(self._summary, self._pending.popleft().result())
        self._pending.append(self._writer.submit(self._kind, items))

    def wait(self) -> None:
        while self._pending:
            _account(self._summary, self._pending.popleft().result())


def import_span_file(
    db: Database,
    path: Path,
    *,
    model_attributes: Sequence[str],
    batch_size: int = 5_000,
    rejects_path: Path | None = None,
    on_progress: Callable[[int, int | None], None] | None = None,
) -> ImportSummary:
    """Import the spans of an OTLP/JSON file: one export request per line (the OpenTelemetry
    Collector file exporter's layout) or one request in the whole file.

    `num_rows` counts spans read. Lines that are not export requests and spans that are
    invalid are written with their reasons (and line number) to the rejects file; the valid
    spans are stored in batches of `batch_size`. Importing a file again is safe: spans already
    stored count as duplicates.

    Raises:
        collectors.files.FileFormatError: the file is missing or in neither layout.
    """
    summary = ImportSummary(path=str(path), format="otlp-json", kind=BatchKind.SPANS.value)
    rejects = _Rejects(rejects_path or Path.cwd() / f"{path.name}.rejects.jsonl")
    writer = BatchWriter(
        db.write_sessions, rollup_tags=(), max_queued_items=IN_FLIGHT_BATCHES * batch_size
    )
    submitter = _Submitter(writer, BatchKind.SPANS, summary)
    buffer: list[SpanIn] = []
    started = time.perf_counter()
    writer.start()
    try:
        for request in read_trace_file(path):
            buffer += _validate_request(request, model_attributes, summary, rejects)
            while len(buffer) >= batch_size:
                submitter.submit(buffer[:batch_size])
                buffer = buffer[batch_size:]
            if on_progress is not None:
                on_progress(summary.num_rows, None)
        if buffer:
            submitter.submit(buffer)
        submitter.wait()
    finally:
        writer.stop()
        rejects.close()
        summary.num_rejected = rejects.count
        summary.rejects_path = str(rejects.opened[0]) if rejects.opened else None
        summary.seconds = time.perf_counter() - started
    return summary


def _validate_request(
    request: FileRequest,
    model_attributes: Sequence[str],
    summary: ImportSummary,
    rejects: _Rejects,
) -> list[SpanIn]:
    if request.traces is None:
        rejects.add(request.line, [{"field": None, "message": request.error}], request.raw)
        return []
    summary.num_rows += request.traces.num_spans
    validated = validate_spans(request.traces, model_attributes=model_attributes)
    for rejection in validated.rejections:
        reason = {"field": None, "message": rejection.describe()}
        rejects.add(request.line, [reason], rejection.data)
    return validated.spans
