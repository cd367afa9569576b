"""Decode JSONL, JSON, CSV and Parquet files into row dicts in the contract's shape.

Flat files carry nested fields as dotted columns: ``features.amount``, ``tags.host`` (the shape
``pandas.json_normalize`` writes). Parquet may also carry them as struct or map columns named
``features`` and ``tags``. Empty CSV cells, nulls and NaN feature values are missing values.

Rows are yielded in chunks with their 1-based row (or line) number, so that a caller can report
exactly which rows it rejected. A line that is not JSON is yielded as a `RowError`, not raised:
one bad line must not stop an import. A file that cannot be read at all raises `FileFormatError`.

CSV and Parquet are also available as Arrow tables (`read_tables`), for callers that work on
whole columns; `table_rows` turns such a table into the same rows `read_rows` yields. Timestamps
are read to the microsecond (finer digits are dropped), the precision both databases store.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

FileFormat = Literal["jsonl", "json", "csv", "parquet"]
NESTED_FIELDS = ("features", "tags")
# Contract fields that are text even when a file holds only digits in them (request ids, versions
# such as 2 or 1.10): CSV type inference must not turn them into numbers.
TEXT_FIELDS = frozenset(
    {
        "model",
        "model_version",
        "request_id",
        "host",
        "resource",
        "name",
        "kind",
        "description",
        "error",
        "status",
        "trace_id",
    }
)
UTF8_BOM = b"\xef\xbb\xbf"
_UNITS_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000}
_SECONDS_PER_DAY = 86_400
#: Epoch seconds of 0001-01-01 and of 10000-01-01: the range of a Python datetime.
_FIRST_DATETIME_SECONDS = -62_135_596_800
_END_OF_DATETIME_SECONDS = 253_402_300_800
_SUFFIXES: dict[str, FileFormat] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}


class FileFormatError(Exception):
    """The file cannot be read as the given format; nothing of it should be imported."""


@dataclass(frozen=True)
class Row:
    number: int
    data: dict[str, Any]


@dataclass(frozen=True)
class RowError:
    number: int
    message: str
    raw: str


@dataclass(frozen=True)
class TableChunk:
    """Consecutive rows of a CSV or Parquet file as read, the first numbered `first_number`."""

    first_number: int
    table: pa.Table

    def numbers(self) -> range:
        return range(self.first_number, self.first_number + self.table.num_rows)


def detect_format(path: Path, declared: str | None = None) -> FileFormat:
    """The format named by `declared`, else by the file suffix (``.gz`` is looked through)."""
    if declared and declared != "auto":
        if declared not in ("jsonl", "json", "csv", "parquet"):
            raise FileFormatError(f"unknown format {declared!r}: use jsonl, json, csv or parquet")
        return declared  # type: ignore[return-value]
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    if suffixes and suffixes[-1] in _SUFFIXES:
        return _SUFFIXES[suffixes[-1]]
    raise FileFormatError(
        f"cannot tell the format of {path.name}: pass --format jsonl, json, csv or parquet"
    )


def count_rows_hint(path: Path, fmt: FileFormat) -> int | None:
    """Rows in the file when cheap to know (Parquet metadata), for progress reporting."""
    if fmt == "parquet":
        _require_file(path)
        try:
            return int(pq.ParquetFile(path).metadata.num_rows)
        except (pa.ArrowInvalid, OSError) as error:
            raise FileFormatError(f"{path.name} is not a readable Parquet file: {error}") from None
    return None


def read_rows(
    path: Path, fmt: FileFormat, *, chunk_size: int = 5_000
) -> Iterator[list[Row | RowError]]:
    """Rows of the file in chunks of up to `chunk_size`."""
    _require_file(path)
    readers = {"jsonl": _read_jsonl, "json": _read_json, "csv": _read_csv, "parquet": _read_parquet}
    yield from readers[fmt](path, chunk_size)


def read_tables(path: Path, fmt: FileFormat, *, chunk_size: int = 5_000) -> Iterator[TableChunk]:
    """The rows of a CSV or Parquet file as Arrow tables of up to `chunk_size` rows."""
    _require_file(path)
    if fmt == "parquet":
        yield from _parquet_tables(path, chunk_size)
    elif fmt == "csv":
        yield from _rechunk(_csv_tables(path), chunk_size)
    else:
        raise ValueError(f"{fmt} files are not read as tables")


def _rechunk(chunks: Iterator[TableChunk], size: int) -> Iterator[TableChunk]:
    """The same rows in tables of `size` rows, whatever sizes they were read in."""
    pending: list[TableChunk] = []
    num_pending = 0
    for chunk in chunks:
        pending.append(chunk)
        num_pending += chunk.table.num_rows
        while num_pending >= size:
            table = pa.concat_tables([c.table for c in pending])
            yield TableChunk(pending[0].first_number, table.slice(0, size))
            rest = TableChunk(pending[0].first_number + size, table.slice(size))
            pending, num_pending = [rest], rest.table.num_rows
    if num_pending:
        yield TableChunk(pending[0].first_number, pa.concat_tables([c.table for c in pending]))


def has_tables(fmt: FileFormat) -> bool:
    """Whether `read_tables` reads this format."""
    return fmt in ("csv", "parquet")


def _require_file(path: Path) -> None:
    if not path.is_file():
        raise FileFormatError(f"{path} does not exist or is not a file")


def _open_text(path: Path) -> Any:
    if path.suffix.lower() == ".gz":
        import gzip

        return gzip.open(path, "rb")
    return path.open("rb")


def _read_jsonl(path: Path, chunk_size: int) -> Iterator[list[Row | RowError]]:
    chunk: list[Row | RowError] = []
    with _open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            if number == 1:
                line = line.removeprefix(UTF8_BOM)  # written by Excel, PowerShell, Notepad
            if not line.strip():
                continue
            chunk.append(_decode_line(number, line))
            if len(chunk) >= chunk_size:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def _decode_line(number: int, line: bytes) -> Row | RowError:
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        return RowError(number, f"not valid JSON: {error}", line[:2000].decode("utf-8", "replace"))
    if not isinstance(data, dict):
        return RowError(
            number, "each line must be a JSON object", line[:2000].decode("utf-8", "replace")
        )
    return Row(number, data)


def _read_json(path: Path, chunk_size: int) -> Iterator[list[Row | RowError]]:
    with _open_text(path) as handle:
        content = handle.read().removeprefix(UTF8_BOM)
    if content.lstrip()[:1] != b"[":
        single = _single_object(content)
        if single is not None:  # one object, possibly spread over many lines
            yield [Row(1, single)]
            return
        yield from _read_jsonl(path, chunk_size)
        return
    try:
        items = orjson.loads(content)
    except orjson.JSONDecodeError as error:
        raise FileFormatError(f"{path.name} is not valid JSON: {error}") from None
    rows: list[Row | RowError] = [
        Row(n, item)
        if isinstance(item, dict)
        else RowError(n, "each item must be a JSON object", str(item)[:2000])
        for n, item in enumerate(items, start=1)
    ]
    for start in range(0, len(rows), chunk_size):
        yield rows[start : start + chunk_size]


def _single_object(content: bytes) -> dict[str, Any] | None:
    """The file's one JSON object, or None when it holds something else (such as JSON lines)."""
    try:
        value = orjson.loads(content)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _read_csv(path: Path, chunk_size: int) -> Iterator[list[Row | RowError]]:
    for chunk in _csv_tables(path):
        yield from _split(table_rows(chunk), chunk_size)


def _csv_tables(path: Path) -> Iterator[TableChunk]:
    options = pa_csv.ReadOptions(block_size=1 << 22)
    try:
        text_columns = {name: pa.string() for name in _csv_header(path, options) if _is_text(name)}
        convert = pa_csv.ConvertOptions(
            strings_can_be_null=True, quoted_strings_can_be_null=False, column_types=text_columns
        )
        reader = pa_csv.open_csv(path, read_options=options, convert_options=convert)
        number = 2  # the header is line 1
        for batch in reader:
            yield TableChunk(number, pa.Table.from_batches([batch]))
            number += batch.num_rows
    except (pa.ArrowInvalid, OSError) as error:
        raise FileFormatError(f"{path.name} is not a readable CSV file: {error}") from None


def _csv_header(path: Path, options: pa_csv.ReadOptions) -> list[str]:
    return list(pa_csv.open_csv(path, read_options=options).schema.names)


def _is_text(column: str) -> bool:
    return column in TEXT_FIELDS or column.startswith("tags.")


def _read_parquet(path: Path, chunk_size: int) -> Iterator[list[Row | RowError]]:
    for chunk in _parquet_tables(path, chunk_size):
        yield table_rows(chunk)


def _parquet_tables(path: Path, batch_size: int = 65_536) -> Iterator[TableChunk]:
    try:
        parquet = pq.ParquetFile(path)
        number = 1
        for batch in parquet.iter_batches(batch_size=batch_size):
            yield TableChunk(number, pa.Table.from_batches([batch]))
            number += batch.num_rows
    except (pa.ArrowInvalid, OSError) as error:
        raise FileFormatError(f"{path.name} is not a readable Parquet file: {error}") from None


def _split(rows: list[Row | RowError], size: int) -> Iterator[list[Row | RowError]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def table_rows(chunk: TableChunk, positions: Sequence[int] | None = None) -> list[Row | RowError]:
    """Rows of an Arrow table (those at `positions`, or all), with dotted and struct/map columns
    nested and nulls dropped."""
    table = chunk.table if positions is None else chunk.table.take(positions)
    numbers = chunk.numbers() if positions is None else [chunk.first_number + i for i in positions]
    nested = {
        name: [c for c in table.column_names if c.startswith(name + ".")] for name in NESTED_FIELDS
    }
    flat = [c for c in table.column_names if not any(c in cols for cols in nested.values())]
    unreadable: dict[int, str] = {}
    columns = {
        name: _datetimes(name, table.column(name), unreadable).to_pylist()
        for name in table.column_names
    }
    rows: list[Row | RowError] = []
    for i, number in enumerate(numbers):
        if i in unreadable:
            rows.append(RowError(number, unreadable[i], unreadable[i]))
            continue
        data: dict[str, Any] = {}
        for name in flat:
            value = columns[name][i]
            if value is not None:
                data[name] = _plain(name, value)
        for field, names in nested.items():
            if names:
                values = {c[len(field) + 1 :]: _feature_value(columns[c][i]) for c in names}
                merged = {**data.get(field, {}), **values}
                data[field] = _drop_missing(field, merged)
        rows.append(Row(number, data))
    return rows


def datetime_range(kind: pa.TimestampType) -> tuple[int, int]:
    """The values of a timestamp type (seconds to microseconds) that read as Python datetimes:
    from the first up to, not including, the second."""
    per_second = _UNITS_PER_SECOND[kind.unit]
    # In a zone other than UTC a value reads as local time, up to a day off.
    margin = 0 if kind.tz in (None, "UTC", "+00:00") else _SECONDS_PER_DAY
    low = (_FIRST_DATETIME_SECONDS + margin) * per_second
    return low, (_END_OF_DATETIME_SECONDS - margin) * per_second


def _datetimes(name: str, column: pa.ChunkedArray, unreadable: dict[int, str]) -> pa.ChunkedArray:
    """A timestamp column made readable as Python datetimes: nanoseconds cut to microseconds,
    and values outside the years 1 to 9999 (which Python cannot hold) nulled, their rows noted
    in `unreadable`. Other columns as they are."""
    kind = column.type
    if not pa.types.is_timestamp(kind):
        return column
    if kind.unit == "ns":
        column = column.cast(pa.timestamp("us", tz=kind.tz), safe=False)
    low, high = datetime_range(column.type)
    raw = column.cast(pa.int64())
    outside = pc.fill_null(pc.or_(pc.less(raw, low), pc.greater_equal(raw, high)), False)
    for i in np.flatnonzero(outside.to_numpy()):
        unreadable[int(i)] = f"{name}: timestamp outside the years 1 to 9999"
    if not pc.any(outside).as_py():
        return column
    return pc.if_else(outside, pa.scalar(None, column.type), column)


def _plain(name: str, value: Any) -> Any:
    if name in TEXT_FIELDS and isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # an integer column of request ids or versions
    if name in NESTED_FIELDS:
        if isinstance(value, list):  # Arrow map columns come back as (key, value) pairs
            value = dict(value)
        if isinstance(value, dict):
            return _drop_missing(name, {k: _feature_value(v) for k, v in value.items()})
    return value


def _feature_value(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _drop_missing(field: str, values: dict[str, Any]) -> dict[str, Any]:
    """Tags have no null values: a missing tag is absent. Features keep nulls (missing input)."""
    if field == "tags":
        return {k: _tag_text(v) for k, v in values.items() if v is not None}
    return values


def _tag_text(value: Any) -> str:
    """A tag value as text, booleans spelled as in JSON (`canary=true`, not `True`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)
