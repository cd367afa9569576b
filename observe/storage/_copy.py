"""Postgres COPY text format built from Arrow columns, without a Python object per row.

Each row is the column values joined by tabs, `\\N` for NULL, with backslash, tab, newline and
carriage return escaped (https://www.postgresql.org/docs/current/sql-copy.html, "Text Format").
Arrow's compute kernels do the joining in C++, so the cost per row is a few nanoseconds per
column instead of a Python tuple and the driver's per-value adaptation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

NULL = "\\N"
#: Characters COPY's text format gives a meaning to, with what stands for them.
_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"))

CopyValue: TypeAlias = pa.Array | str | None


def copy_text(columns: Sequence[CopyValue], num_rows: int) -> memoryview:
    """The COPY FROM STDIN payload of `num_rows` rows of `columns`.

    Args:
        columns: per column either an Arrow array (strings are escaped, other types formatted
            by Arrow's cast to text: shortest round-trip floats, ISO 8601 timestamps), or one
            text (or None for NULL) that every row has.
    """
    if num_rows == 0:
        return memoryview(b"")
    parts = [_text_column(column) for column in columns]
    last = parts[-1]
    parts[-1] = pc.binary_join_element_wise(
        last if isinstance(last, pa.Array) else pa.scalar(last, pa.large_string()),
        pa.scalar("\n", pa.large_string()),
        pa.scalar("", pa.large_string()),
        null_handling="replace",
        null_replacement=NULL,
    )
    lines = pc.binary_join_element_wise(
        *[_as_argument(part) for part in parts],
        pa.scalar("\t", pa.large_string()),
        null_handling="replace",
        null_replacement=NULL,
    )
    if isinstance(lines, pa.Scalar):  # every column was a constant
        return memoryview(lines.as_py().encode() * num_rows)
    return _data(lines)


def _text_column(column: CopyValue) -> pa.Array | str | None:
    if not isinstance(column, pa.Array):
        return column if column is None else escape_text(column)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return _escape_array(column.cast(pa.large_string()))
    if pa.types.is_timestamp(column.type) and column.type.tz is not None:
        return _utc_text(column)
    return column.cast(pa.large_string())


def _utc_text(column: pa.Array) -> pa.Array:
    """ISO 8601 text of UTC timestamps, marked UTC ("Z"). Formatting them without a time zone
    and appending the marker is much faster than Arrow's time-zone-aware formatting."""
    utc = column.cast(pa.timestamp(column.type.unit, tz="UTC"))
    naive = utc.cast(pa.timestamp(column.type.unit)).cast(pa.large_string())
    marker, nothing = pa.scalar("Z", pa.large_string()), pa.scalar("", pa.large_string())
    return pc.binary_join_element_wise(naive, marker, nothing)


def _as_argument(part: pa.Array | str | None) -> pa.Array | pa.Scalar:
    return part if isinstance(part, pa.Array) else pa.scalar(part, pa.large_string())


def escape_text(value: str) -> str:
    """`value` as COPY's text format writes it."""
    for char, escaped in _ESCAPES:
        value = value.replace(char, escaped)
    return value


def _escape_array(values: pa.Array) -> pa.Array:
    if not _may_need_escape(values):
        return values
    for char, escaped in _ESCAPES:
        values = pc.replace_substring(values, char, escaped)
    return values


def _may_need_escape(values: pa.Array) -> bool:
    """Whether any string may hold a character COPY escapes. The data buffer is scanned as
    bytes, many times faster than a regular expression per string; it may say yes needlessly
    (other control characters, bytes of a sliced array's unused part), which costs only an
    escape pass that changes nothing."""
    data = values.buffers()[2]
    if data is None:
        return False
    raw = np.frombuffer(data, dtype=np.uint8)
    return bool((raw == ord("\\")).any() or (raw <= ord("\r")).any())


def _data(lines: pa.Array) -> memoryview:
    """The concatenated text of a large_string array, straight from its data buffer."""
    _, offsets, data = lines.buffers()
    if data is None:
        return memoryview(b"")
    positions = memoryview(offsets).cast("q")
    return memoryview(data)[positions[lines.offset] : positions[lines.offset + len(lines)]]
