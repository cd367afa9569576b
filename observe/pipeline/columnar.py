"""Validating Arrow tables of inference records column by column.

`observe import` reads CSV and Parquet files as Arrow tables. Checking them a row at a time (a
dict and a pydantic model per row) costs more than storing them, so here the rules of
`InferenceRecordIn` are applied to whole columns with Arrow's compute kernels and numpy, and the
rows that pass become a `RecordTable` without any per-row Python object.

The columnar checks only vouch for a row when the row model would accept it and produce the same
values. A row that fails a check, or holds a type handled here only in the common cases, is
"unsure": the caller gives it to the row model (`collectors.files.table_rows` and
`InferenceRecordIn`), which rejects it with its exact messages or accepts it. The checks may be
stricter than the model without changing an outcome, never laxer. The column conventions
(dotted `features.x` and `tags.x` columns, struct columns) are those of `table_rows`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import ConfigDict, TypeAdapter, ValidationError

from collectors.files import datetime_range
from observe.schemas.common import (
    INT64_MAX,
    MAX_NAME_LENGTH,
    MAX_STRING_LENGTH,
    MAX_TAG_KEY_LENGTH,
    Timestamp,
    check_json_value,
)
from observe.schemas.record_table import RECORD_SCHEMA, RecordTable
from observe.schemas.records import MAX_LATENCY_MS, InferenceRecordIn

NESTED = ("features", "tags")
#: Characters that JSON strings escape (orjson escapes exactly these).
_JSON_ESCAPED = r'[\x00-\x1f"\\]'
_TRACE_ID = r"^[0-9a-fA-F]{32}$"
_TIMESTAMPS: TypeAdapter[Any] = TypeAdapter(
    Timestamp, config=ConfigDict(allow_inf_nan=InferenceRecordIn.model_config["allow_inf_nan"])
)


@dataclass(frozen=True)
class ColumnarRecords:
    """The outcome for one table: the rows vouched for, and the rows left to the row model.

    Attributes:
        records: the rows that passed every check, in table order.
        positions: their positions in the table.
        unsure: positions of the other rows.
    """

    records: RecordTable
    positions: npt.NDArray[np.int64]
    unsure: npt.NDArray[np.int64]


@dataclass
class _Rows:
    """Which rows of the table a check has failed so far."""

    num_rows: int
    failed: npt.NDArray[np.bool_] = field(init=False)

    def __post_init__(self) -> None:
        self.failed = np.zeros(self.num_rows, dtype=bool)

    def fail(self, where: pa.Array | pa.ChunkedArray | npt.NDArray[np.bool_]) -> None:
        """Fail the rows where `where` is true (a null counts as false)."""
        self.failed |= where if isinstance(where, np.ndarray) else _as_numpy(where)

    def fail_all(self) -> None:
        self.failed[:] = True


def validate_records(table: pa.Table, *, tag_keys: Iterable[str] = ()) -> ColumnarRecords:
    """Check the records of a table read from a file, column by column.

    Args:
        table: rows in the file conventions of `collectors.files`.
        tag_keys: the tags whose values the returned RecordTable keeps (for rollups).
    """
    rows = _Rows(table.num_rows)
    if len(set(table.column_names)) < len(table.column_names):
        rows.fail_all()  # the row model decides what duplicated columns mean
    columns = {name: _decoded(table.column(name)) for name in table.column_names}
    flat = {n: c for n, c in columns.items() if not n.startswith(tuple(f + "." for f in NESTED))}
    for name, column in flat.items():
        if name not in InferenceRecordIn.model_fields:
            rows.fail(column.is_valid())  # an unknown field, unless empty in that row
    feature_members = _Members.of("features", columns, rows)
    for member in feature_members.members:
        if not _is_valid_feature_key(member.key):
            feature_members.fail_where_present(member, rows)
    features = _json_object(
        feature_members, [_feature_text(m.values, rows) for m in feature_members.members]
    )
    tag_members = _Members.of("tags", columns, rows)
    tag_texts = [_tag_text(member, rows) for member in tag_members.members]
    tags = _json_object(tag_members, [json_strings(text) for text in tag_texts])
    record_columns = {
        "model": _name(flat.get("model"), rows),
        "model_version": _name(flat.get("model_version"), rows),
        "request_id": _name(flat.get("request_id"), rows),
        "timestamp": _timestamp(flat.get("timestamp"), rows),
        "latency_ms": _number(flat.get("latency_ms"), rows, required=True, maximum=MAX_LATENCY_MS),
        "status": _status(flat.get("status"), rows),
        "error": _free_text(flat.get("error"), rows),
        "features": features,
        "prediction": _json_value(flat.get("prediction"), rows),
        "label": _json_value(flat.get("label"), rows),
        "tags": tags,
        "input_size": _number(flat.get("input_size"), rows, required=False),
        "trace_id": _trace_id(flat.get("trace_id"), rows),
    }
    tag_values = {m.key: text for m, text in zip(tag_members.members, tag_texts, strict=True)}
    return _outcome(record_columns, tag_values, tag_keys, rows)


def _outcome(
    record_columns: dict[str, pa.Array],
    tag_values: dict[str, pa.Array],
    tag_keys: Iterable[str],
    rows: _Rows,
) -> ColumnarRecords:
    positions = np.flatnonzero(~rows.failed)
    unsure = np.flatnonzero(rows.failed)
    columns = pa.table({name: record_columns[name] for name in RECORD_SCHEMA.names})
    keys = {key: _values_or_nulls(tag_values.get(key), rows.num_rows) for key in tag_keys}
    records = RecordTable(columns.cast(RECORD_SCHEMA), keys)
    if len(unsure):
        records = records.take(positions)
    return ColumnarRecords(records, positions, unsure)


# --- columns and nested members -------------------------------------------------------------------


def _decoded(column: pa.ChunkedArray) -> pa.Array:
    """One contiguous array; dictionary-encoded columns (pandas categoricals) decoded."""
    array = column.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    return array


@dataclass(frozen=True)
class _Member:
    """One key of `features` or `tags`: its values, and where rows have the key at all (None:
    in every row)."""

    key: str
    values: pa.Array
    present: pa.Array | None


@dataclass(frozen=True)
class _Members:
    """The keys of `features` or `tags` (struct members, then dotted columns, as the row path
    merges them), and where rows have the field as an object at all (None: in every row)."""

    members: list[_Member]
    is_object: pa.Array | None
    num_rows: int

    @classmethod
    def of(cls, name: str, columns: dict[str, pa.Array], rows: _Rows) -> _Members:
        struct = columns.get(name)
        members = _struct_members(struct, rows)
        dotted = [c for c in columns if c.startswith(name + ".")]
        members += [_Member(c[len(name) + 1 :], columns[c], None) for c in dotted]
        if len({m.key for m in members}) < len(members):
            rows.fail_all()  # a key given twice: the row model merges them
        is_object: pa.Array | None
        if dotted:
            is_object = None
        elif struct is not None and pa.types.is_struct(struct.type):
            is_object = struct.is_valid()
        else:
            is_object = pa.array(np.zeros(rows.num_rows, dtype=bool))
        return cls(members, is_object, rows.num_rows)

    def fail_where_present(self, member: _Member, rows: _Rows) -> None:
        if member.present is None:
            rows.fail_all()
        else:
            rows.fail(member.present)


def _struct_members(column: pa.Array | None, rows: _Rows) -> list[_Member]:
    if column is None or pa.types.is_null(column.type):
        return []
    if not pa.types.is_struct(column.type):
        rows.fail(column.is_valid())  # a map, or no object at all: left to the row model
        return []
    present = column.is_valid() if column.null_count else None
    children = column.flatten()  # null where the struct itself is null
    return [_Member(column.type.field(i).name, child, present) for i, child in enumerate(children)]


def _json_object(members: _Members, value_texts: list[pa.Array]) -> pa.Array:
    """Per row, the JSON object of the members it has (a null value text leaves the member
    out), or null where the row has no object."""
    if all(m.present is None for m in members.members) and not any(
        t.null_count for t in value_texts
    ):
        objects = _join_every_member(members, value_texts)
    else:
        objects = _join_present_members(members, value_texts)
    if members.is_object is None:
        return objects
    return pc.if_else(members.is_object, objects, pa.scalar(None, pa.string()))


def _join_every_member(members: _Members, value_texts: list[pa.Array]) -> pa.Array:
    """The objects when every row has every member: one join of keys and values."""
    pieces: list[Any] = []
    for n, (member, texts) in enumerate(zip(members.members, value_texts, strict=True)):
        pieces += [("{" if n == 0 else ",") + orjson.dumps(member.key).decode() + ":", texts]
    if not pieces:
        return pa.array(["{}"] * members.num_rows, pa.string())
    return pc.binary_join_element_wise(*pieces, "}", "")


def _join_present_members(members: _Members, value_texts: list[pa.Array]) -> pa.Array:
    # Each member as ',"key":value' (empty where left out), joined, the first comma cut off.
    # (null_handling="skip" would do the same, but pyarrow 26 drops the rows where every
    # input is null from its result.)
    pieces = []
    for member, texts in zip(members.members, value_texts, strict=True):
        key = "," + orjson.dumps(member.key).decode() + ":"
        piece = pc.fill_null(pc.binary_join_element_wise(key, texts, ""), "")
        if member.present is not None:
            piece = pc.if_else(member.present, piece, "")
        pieces.append(piece)
    joined = pc.binary_join_element_wise(*pieces, "") if pieces else None
    inner = pc.utf8_slice_codeunits(joined, start=1) if joined is not None else ""
    return pc.binary_join_element_wise("{", _column_or(inner, members.num_rows), "}", "")


def _column_or(value: pa.Array | str, num_rows: int) -> pa.Array:
    return value if isinstance(value, pa.Array) else pa.array([value] * num_rows, pa.string())


def _is_valid_feature_key(key: str) -> bool:
    return 1 <= len(key) <= MAX_STRING_LENGTH and "\x00" not in key


# --- scalar fields --------------------------------------------------------------------------------


def _name(column: pa.Array | None, rows: _Rows) -> pa.Array:
    """A required name: 1 to 200 characters, no NUL."""
    text = _text(column, rows)
    rows.fail(text.is_null())
    _check_length(text, rows, minimum=1, maximum=MAX_NAME_LENGTH)
    return text


def _free_text(column: pa.Array | None, rows: _Rows) -> pa.Array:
    text = _text(column, rows)
    _check_length(text, rows, minimum=0, maximum=MAX_STRING_LENGTH)
    return text


def _status(column: pa.Array | None, rows: _Rows) -> pa.Array:
    status = pc.fill_null(_text(column, rows), "ok")
    rows.fail(pc.invert(pc.is_in(status, value_set=pa.array(["ok", "error"]))))
    return status


def _trace_id(column: pa.Array | None, rows: _Rows) -> pa.Array:
    text = _text(column, rows)
    rows.fail(pc.invert(pc.match_substring_regex(text, _TRACE_ID)))
    lower = pc.utf8_lower(text)
    rows.fail(pc.equal(lower, "0" * 32))
    return lower


def _text(column: pa.Array | None, rows: _Rows) -> pa.Array:
    """Text values; integers are text fields' digits (request ids, versions), as in the row
    path. Other types are left to the row model."""
    if column is None or pa.types.is_null(column.type):
        return pa.nulls(rows.num_rows, pa.string())
    if _is_string(column.type) or pa.types.is_integer(column.type):
        return column.cast(pa.string())
    rows.fail(column.is_valid())
    return pa.nulls(rows.num_rows, pa.string())


def _check_length(text: pa.Array, rows: _Rows, *, minimum: int, maximum: int) -> None:
    length = pc.utf8_length(text)
    rows.fail(pc.or_(pc.less(length, minimum), pc.greater(length, maximum)))
    rows.fail(pc.match_substring(text, "\x00"))


def _timestamp(column: pa.Array | None, rows: _Rows) -> pa.Array:
    """Required; native timestamps are checked here, text and numbers parsed one by one."""
    if column is None or pa.types.is_null(column.type):
        rows.fail_all()
        return pa.nulls(rows.num_rows, pa.timestamp("us", tz="UTC"))
    rows.fail(column.is_null())
    if pa.types.is_timestamp(column.type):
        return _native_timestamp(column, rows)
    if _is_string(column.type) or _is_number(column.type):
        return _parsed_timestamp(column, rows)
    rows.fail_all()
    return pa.nulls(rows.num_rows, pa.timestamp("us", tz="UTC"))


def _native_timestamp(column: pa.Array, rows: _Rows) -> pa.Array:
    """Instants from 1970 (naive values are UTC) that the row path can read, cut to
    microseconds as the row path cuts them."""
    raw = column.cast(pa.int64())
    rows.fail(pc.less(raw, 0))
    if column.type.unit != "ns":  # nanoseconds end in 2262
        rows.fail(pc.greater_equal(raw, datetime_range(column.type)[1]))
    micros = column.cast(pa.timestamp("us", tz=column.type.tz), safe=False)
    return micros.cast(pa.timestamp("us", tz="UTC"))


def _parsed_timestamp(column: pa.Array, rows: _Rows) -> pa.Array:
    parsed: list[Any] = []
    failed = np.zeros(rows.num_rows, dtype=bool)
    for i, value in enumerate(column.to_pylist()):
        try:
            parsed.append(None if value is None else _TIMESTAMPS.validate_python(value))
        except ValidationError:
            parsed.append(None)
            failed[i] = True
    rows.fail(failed)
    return pa.array(parsed, pa.timestamp("us", tz="UTC"))


def _number(
    column: pa.Array | None, rows: _Rows, *, required: bool, maximum: float | None = None
) -> pa.Array:
    """A finite number >= 0 (integers count, booleans do not)."""
    if column is None or pa.types.is_null(column.type):
        if required:
            rows.fail_all()
        return pa.nulls(rows.num_rows, pa.float64())
    if not _is_number(column.type):
        rows.fail(column.is_valid())
        return pa.nulls(rows.num_rows, pa.float64())
    values = column.cast(pa.float64(), safe=False)
    if required:
        rows.fail(values.is_null())
    rows.fail(pc.invert(pc.is_finite(values)))
    rows.fail(pc.less(values, 0.0))
    if maximum is not None:
        rows.fail(pc.greater(values, maximum))
    return values


# --- JSON values ----------------------------------------------------------------------------------


def _json_value(column: pa.Array | None, rows: _Rows) -> pa.Array:
    """Prediction and label: any JSON value; null is a missing value."""
    if column is None or pa.types.is_null(column.type):
        return pa.nulls(rows.num_rows, pa.string())
    if pa.types.is_floating(column.type):
        rows.fail(pc.invert(pc.is_finite(column)))
    elif not _is_scalar_json(column.type):
        return _json_value_texts(column, rows)
    return pc.if_else(column.is_valid(), _scalar_json(column, rows), pa.scalar(None, pa.string()))


def _json_value_texts(column: pa.Array, rows: _Rows) -> pa.Array:
    """Nested values (structs, lists): checked and encoded one by one, as the row model does."""
    texts: list[str | None] = []
    failed = np.zeros(rows.num_rows, dtype=bool)
    for i, value in enumerate(column.to_pylist()):
        try:
            texts.append(None if value is None else _checked_json(value))
        except (ValueError, TypeError):
            texts.append(None)
            failed[i] = True
    rows.fail(failed)
    return pa.array(texts, pa.string())


def _checked_json(value: Any) -> str:
    check_json_value(value)
    return orjson.dumps(value).decode()


def _feature_text(values: pa.Array, rows: _Rows) -> pa.Array:
    """A feature's JSON values; a missing value (null, NaN) is JSON null."""
    if pa.types.is_null(values.type):
        return pa.array(["null"] * len(values), pa.string())
    if not _is_scalar_json(values.type):
        rows.fail(values.is_valid())
        return pa.array(["null"] * len(values), pa.string())
    if pa.types.is_floating(values.type):
        rows.fail(pc.is_inf(values))
    texts = _scalar_json(values, rows)
    return pc.fill_null(texts, "null") if texts.null_count else texts


def _scalar_json(values: pa.Array, rows: _Rows) -> pa.Array:
    """JSON texts of numbers, booleans and strings, encoded as orjson encodes the Python value
    (NaN is "null"; nulls are null, or "null" for floats)."""
    if pa.types.is_floating(values.type):
        return _float_json(values.cast(pa.float64()))
    if pa.types.is_integer(values.type):
        if pa.types.is_uint64(values.type):
            rows.fail(pc.greater(values, pa.scalar(INT64_MAX, pa.uint64())))
        return values.cast(pa.string())
    if pa.types.is_boolean(values.type):
        return pc.if_else(values, "true", "false")
    text = values.cast(pa.string())
    _check_length(text, rows, minimum=0, maximum=MAX_STRING_LENGTH)
    return json_strings(text)


def _float_json(values: pa.Array) -> pa.Array:
    """orjson's text of each float64 ("null" for NaN and nulls): orjson formats a whole numpy
    array in one call, and the numbers are split apart in Arrow."""
    if not len(values):
        return pa.array([], pa.string())
    numbers = pc.fill_null(values, math.nan).to_numpy(zero_copy_only=False)
    encoded = orjson.dumps(numbers, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1].decode()
    texts = pc.split_pattern(pa.array([encoded], pa.large_string()), ",").flatten()
    return texts.cast(pa.string())


def json_strings(text: pa.Array) -> pa.Array:
    """Each string as a JSON string literal, exactly as orjson writes it (null stays null)."""
    quoted = pc.binary_join_element_wise('"', text, '"', "")
    escaped = pc.fill_null(pc.match_substring_regex(text, _JSON_ESCAPED), False)
    if not pc.any(escaped).as_py():
        return quoted
    special = text.filter(escaped).to_pylist()
    encoded = pa.array([orjson.dumps(value).decode() for value in special], pa.string())
    return pc.replace_with_mask(quoted, escaped, encoded)


# --- tags -----------------------------------------------------------------------------------------


def _tag_text(member: _Member, rows: _Rows) -> pa.Array:
    """A tag's values as the text the row path gives them: numbers and booleans spelled out,
    null where the row has no such tag (null, NaN)."""
    values = member.values
    if not _is_valid_tag_key(member.key):
        rows.fail(values.is_valid())
    if pa.types.is_null(values.type):
        text = pa.nulls(len(values), pa.string())
    elif pa.types.is_boolean(values.type):
        text = pc.if_else(values, "true", "false")
    elif _is_string(values.type) or pa.types.is_integer(values.type):
        text = values.cast(pa.string())
    elif pa.types.is_floating(values.type):
        text = _python_float_text(values)
    else:
        rows.fail(values.is_valid())
        return pa.nulls(len(values), pa.string())
    _check_length(text, rows, minimum=1, maximum=MAX_NAME_LENGTH)
    return text


def _is_valid_tag_key(key: str) -> bool:
    return 1 <= len(key) <= MAX_TAG_KEY_LENGTH and "\x00" not in key


def _python_float_text(values: pa.Array) -> pa.Array:
    """str() of each float, as the row path spells a float tag; NaN is a missing tag."""
    return pa.array(
        [None if v is None or math.isnan(v) else str(v) for v in values.to_pylist()], pa.string()
    )


# --- helpers --------------------------------------------------------------------------------------


def _is_string(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _is_number(kind: pa.DataType) -> bool:
    return bool(pa.types.is_integer(kind) or pa.types.is_floating(kind))


def _is_scalar_json(kind: pa.DataType) -> bool:
    return bool(_is_number(kind) or pa.types.is_boolean(kind) or _is_string(kind))


def _as_numpy(mask: pa.Array | pa.ChunkedArray) -> npt.NDArray[np.bool_]:
    return pc.fill_null(mask, False).to_numpy(zero_copy_only=False)


def _values_or_nulls(values: pa.Array | None, num_rows: int) -> pa.Array:
    return values if values is not None else pa.nulls(num_rows, pa.string())
