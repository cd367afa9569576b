"""A batch of validated inference records as Arrow columns: the shape storage and rollups take.

Per-record Python work is what limits ingest. The HTTP API validates records one at a time
(`InferenceRecordIn`) and turns each batch into a `RecordTable` once; a file import validates
whole Arrow columns (`observe.pipeline.columnar`) and never builds an object per record. From
here on everything is columnar: storage writes the batch with one COPY, rollups read numpy arrays.

JSON fields (features, prediction, label, tags) are held as their JSON text, encoded by orjson
exactly as the record's Python value would be; a missing field is null.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from observe.schemas.records import InferenceRecordIn

#: Separates model and request id in a batch's keys; names never contain NUL.
KEY_SEPARATOR = "\x00"
JSON_FIELDS = ("features", "prediction", "label", "tags")
RECORD_SCHEMA = pa.schema(
    [
        pa.field("model", pa.string()),
        pa.field("model_version", pa.string()),
        pa.field("request_id", pa.string()),
        pa.field("timestamp", pa.timestamp("us", tz="UTC")),
        pa.field("latency_ms", pa.float64()),
        pa.field("status", pa.string()),
        pa.field("error", pa.string()),
        pa.field("features", pa.string()),
        pa.field("prediction", pa.string()),
        pa.field("label", pa.string()),
        pa.field("tags", pa.string()),
        pa.field("input_size", pa.float64()),
        pa.field("trace_id", pa.string()),
    ]
)


@dataclass(frozen=True)
class RecordTable:
    """Validated inference records, one row each, in the columns of `RECORD_SCHEMA`.

    Attributes:
        columns: the records; timestamps in UTC microseconds, JSON fields as JSON text.
        tag_values: per tag key, each record's value of that tag (null where it has none),
            for the keys that rollups may group by.
    """

    columns: pa.Table
    tag_values: Mapping[str, pa.Array]

    def __len__(self) -> int:
        return int(self.columns.num_rows)

    def column(self, name: str) -> pa.Array:
        return self.columns.column(name).combine_chunks()

    def keys(self) -> pa.Array:
        """`model` NUL `request_id` of every record: the idempotency key as one string."""
        return pc.binary_join_element_wise(
            self.column("model"), self.column("request_id"), KEY_SEPARATOR
        )

    def take(self, positions: npt.ArrayLike) -> RecordTable:
        """The records at `positions`; the table itself when that is every record in order."""
        wanted = np.asarray(positions, dtype=np.int64)
        if wanted.size == len(self) and np.array_equal(wanted, np.arange(wanted.size)):
            return self
        indices = pa.array(wanted)
        return RecordTable(
            self.columns.take(indices),
            {key: values.take(indices) for key, values in self.tag_values.items()},
        )

    @classmethod
    def empty(cls) -> RecordTable:
        return cls(RECORD_SCHEMA.empty_table(), {})

    @classmethod
    def concat(cls, tables: Sequence[RecordTable]) -> RecordTable:
        """The records of `tables` one after another; a tag missing from one is null there."""
        keys = sorted({key for table in tables for key in table.tag_values})
        return cls(
            pa.concat_tables([table.columns for table in tables]).combine_chunks(),
            {key: pa.concat_arrays([_tag_or_nulls(t, key) for t in tables]) for key in keys},
        )

    @classmethod
    def from_records(
        cls, records: Sequence[InferenceRecordIn], *, tag_keys: Iterable[str] = ()
    ) -> RecordTable:
        """The table of validated records; `tag_keys` are the tags to keep values of."""
        columns = {
            "model": [r.model for r in records],
            "model_version": [r.model_version for r in records],
            "request_id": [r.request_id for r in records],
            "timestamp": [r.timestamp for r in records],
            "latency_ms": [r.latency_ms for r in records],
            "status": [r.status for r in records],
            "error": [r.error for r in records],
            "features": [json_text(r.features) for r in records],
            "prediction": [json_text(r.prediction) for r in records],
            "label": [json_text(r.label) for r in records],
            "tags": [json_text(r.tags) for r in records],
            "input_size": [r.input_size for r in records],
            "trace_id": [r.trace_id for r in records],
        }
        tag_values = {
            key: pa.array([r.tags.get(key) if r.tags else None for r in records], pa.string())
            for key in tag_keys
        }
        return cls(pa.table(columns, schema=RECORD_SCHEMA), tag_values)


def as_record_table(
    records: RecordTable | Sequence[InferenceRecordIn], *, tag_keys: Iterable[str] = ()
) -> RecordTable:
    """`records` as a RecordTable, converting validated record objects once."""
    if isinstance(records, RecordTable):
        return records
    return RecordTable.from_records(records, tag_keys=tag_keys)


def json_text(value: Any) -> str | None:
    """The JSON text a JSON field stores for `value`; None stays a missing value."""
    return None if value is None else orjson.dumps(value).decode()


def _tag_or_nulls(table: RecordTable, key: str) -> pa.Array:
    values = table.tag_values.get(key)
    return values if values is not None else pa.nulls(len(table), pa.string())
