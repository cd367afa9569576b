"""observe.pipeline.columnar: whole-column checks that agree with the row model on every row.

Every test compares against the row path (`collectors.files.table_rows` and
`InferenceRecordIn`): a row the columnar checks vouch for must be one the model accepts, with
exactly the values the model gives it; every row the model rejects must be left to it.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from pydantic import ValidationError

from collectors.files import RowError, TableChunk, table_rows
from observe.pipeline.columnar import ColumnarRecords, json_strings, validate_records
from observe.schemas.record_table import RecordTable
from observe.schemas.records import InferenceRecordIn
from tests.factories import record_file_table

T0_US = 1_794_830_400 * 1_000_000  # 2026-11-16T12:00:00Z
TAG_KEYS = ("host", "zone", "canary")


def model_outcome(table: pa.Table) -> tuple[dict[int, InferenceRecordIn], set[int]]:
    """The row model's verdict on every row: accepted records by position, rejected positions."""
    accepted: dict[int, InferenceRecordIn] = {}
    rejected: set[int] = set()
    for position, row in enumerate(table_rows(TableChunk(1, table))):
        try:
            if isinstance(row, RowError):
                raise ValueError(row.message)
            accepted[position] = InferenceRecordIn.model_validate(row.data)
        except (ValidationError, ValueError):
            rejected.add(position)
    return accepted, rejected


def assert_agrees(table: pa.Table) -> ColumnarRecords:
    checked = validate_records(table, tag_keys=TAG_KEYS)
    accepted, rejected = model_outcome(table)
    vouched = checked.positions.tolist()
    assert set(vouched) <= set(accepted), "vouched for a row the model rejects"
    assert rejected <= set(checked.unsure.tolist())
    assert sorted(vouched + checked.unsure.tolist()) == list(range(table.num_rows))
    expected = RecordTable.from_records([accepted[p] for p in vouched], tag_keys=TAG_KEYS)
    for name in expected.columns.column_names:
        got, want = checked.records.column(name), expected.column(name)
        assert got.equals(want), (name, _first_difference(got, want))
    for key in TAG_KEYS:
        assert checked.records.tag_values[key].equals(expected.tag_values[key]), key
    return checked


def _first_difference(got: pa.Array, want: pa.Array) -> Any:
    for index, (a, b) in enumerate(zip(got.to_pylist(), want.to_pylist(), strict=True)):
        if a != b:
            return index, a, b
    return None


def base_columns(count: int, **overrides: Any) -> dict[str, Any]:
    columns: dict[str, Any] = {
        "model": pa.array(["fraud-scorer"] * count),
        "model_version": pa.array([f"v{i % 3}" for i in range(count)]),
        "timestamp": pa.array(
            [T0_US + i * 1_234_567 for i in range(count)], pa.timestamp("us", tz="UTC")
        ),
        "request_id": pa.array([f"req-{i}" for i in range(count)]),
        "latency_ms": pa.array([10.0 + i * 0.37 for i in range(count)]),
    }
    columns.update(overrides)
    return columns


def table_of(count: int, **overrides: Any) -> pa.Table:
    return pa.table(base_columns(count, **overrides))


def test_a_clean_numeric_table_is_vouched_for_entirely() -> None:
    rng = np.random.default_rng(1)
    count = 500
    columns = base_columns(count)
    for j in range(20):
        columns[f"features.f{j}"] = pa.array(rng.normal(0, 1, count))
    columns["tags.host"] = pa.array([f"gpu-{i % 4}" for i in range(count)])

    checked = assert_agrees(pa.table(columns))

    assert (len(checked.records), len(checked.unsure)) == (count, 0)
    first = orjson.loads(checked.records.column("features")[0].as_py())
    assert list(first) == [f"f{j}" for j in range(20)]
    assert checked.records.column("tags")[0].as_py() == '{"host":"gpu-0"}'


@pytest.mark.parametrize(
    "values",
    [
        [0.0, -0.0, 15.0, 1e16, 1e15, 123456789012345.0, 1.5e-7, 1e-5, 1e20, 1 / 3, 5e-324],
        [1.7976931348623157e308, -2.5e-300, 9007199254740993.0, 0.1 + 0.2, -1e22, 1e21],
    ],
)
def test_floats_are_written_as_orjson_writes_them(values: list[float]) -> None:
    count = len(values)
    table = table_of(count, **{"features.x": pa.array(values), "prediction": pa.array(values)})

    checked = assert_agrees(table)

    assert len(checked.unsure) == 0
    features = checked.records.column("features").to_pylist()
    assert features == [orjson.dumps({"x": v}).decode() for v in values]


def test_missing_and_non_finite_feature_values() -> None:
    values = [1.5, math.nan, None, math.inf, -math.inf, 2.5]
    table = table_of(len(values), **{"features.x": pa.array(values, pa.float64())})

    checked = assert_agrees(table)

    assert checked.unsure.tolist() == [3, 4]
    assert checked.records.column("features").to_pylist() == [
        '{"x":1.5}',
        '{"x":null}',
        '{"x":null}',
        '{"x":2.5}',
    ]


def test_feature_types_the_model_accepts_and_refuses() -> None:
    count = 8
    strings = ["DE", 'quo"te', "back\\slash", "new\nline", "ünïcødé 🚀", "", "nul\x00", None]
    table = table_of(
        count,
        **{
            "features.s": pa.array(strings),
            "features.i": pa.array([0, -5, 2**62, None, 7, 8, 9, 10], pa.int64()),
            "features.u": pa.array([1, 2, 3, 4, 5, 6, 7, 2**64 - 1], pa.uint64()),
            "features.b": pa.array([True, False, None, True, True, False, True, False]),
            "features.h": pa.array(np.arange(count, dtype=np.float32) / 3),
            "features.n": pa.nulls(count),
            "features.t": pa.array([None] * (count - 1) + [dt.datetime(2026, 1, 1)]),
            "features.long": pa.array(["x" * 70_000 if i == 1 else "y" for i in range(count)]),
        },
    )

    checked = assert_agrees(table)

    assert checked.unsure.tolist() == [1, 6, 7]


def test_features_and_tags_from_struct_columns_and_dotted_columns() -> None:
    count = 6
    features = pa.array(
        [
            None if i == 2 else {"a": float(i) if i % 2 else None, "c": ["x", None, 'y"'][i % 3]}
            for i in range(count)
        ]
    )
    tags = pa.array(
        [
            None if i == 4 else {"host": f"h{i % 2}", "zone": None if i % 2 else "z"}
            for i in range(count)
        ]
    )
    table = table_of(
        count,
        features=features,
        tags=tags,
        **{"features.extra": pa.array([i / 3 for i in range(count)])},
    )

    checked = assert_agrees(table)

    assert len(checked.unsure) == 0
    assert orjson.loads(checked.records.column("features")[2].as_py()) == {"extra": 2 / 3}
    assert checked.records.column("tags")[4].as_py() is None
    assert checked.records.column("tags")[1].as_py() == '{"host":"h1"}'


def test_struct_features_without_dotted_columns_are_missing_where_null() -> None:
    table = table_of(3, features=pa.array([{"a": 1.0}, None, {"a": None}]))

    checked = assert_agrees(table)

    assert checked.records.column("features").to_pylist() == ['{"a":1.0}', None, '{"a":null}']


def test_tag_values_of_every_type_are_spelled_as_the_row_path_spells_them() -> None:
    count = 6
    table = table_of(
        count,
        **{
            "tags.host": pa.array(["gpu-1", None, "", "h" * 201, "a\x00", 'q"\\']),
            "tags.zone": pa.array([1, 2, None, 4, 5, 6], pa.int64()),
            "tags.canary": pa.array([True, False, None, True, False, True]),
            "tags.ratio": pa.array([1.5, math.nan, 15.0, math.inf, None, 1e20]),
        },
    )

    checked = assert_agrees(table)

    assert checked.unsure.tolist() == [2, 3, 4]
    tags = [orjson.loads(t) for t in checked.records.column("tags").to_pylist()]
    assert tags[0] == {"host": "gpu-1", "zone": "1", "canary": "true", "ratio": "1.5"}
    assert tags[1] == {"zone": "2", "canary": "false"}
    assert tags[2] == {"host": 'q"\\', "zone": "6", "canary": "true", "ratio": "1e+20"}
    assert checked.records.tag_values["host"].to_pylist() == ["gpu-1", None, 'q"\\']


def test_scalar_fields_follow_the_model_rules() -> None:
    count = 10
    table = table_of(
        count,
        model_version=pa.array(["v1", "", "x" * 201, None, "a\x00b", "v1", "v1", "v1", "v1", "v1"]),
        latency_ms=pa.array([1.0, 2.0, 3.0, 4.0, 5.0, -1.0, math.nan, 2e12, None, 1e12]),
        status=pa.array([None, "ok", "error", "ok", "ok", "ok", "ok", "ok", "maybe", "error"]),
        error=pa.array(["boom\ttab", None, None, None, None, None, None, None, None, "x\x00"]),
        input_size=pa.array([None, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, math.nan, -0.0]),
        trace_id=pa.array(["ABCDEF0123456789abcdef0123456789", "0" * 32, "xyz"] + [None] * 7),
    )

    checked = assert_agrees(table)

    assert checked.unsure.tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert checked.records.column("status").to_pylist() == ["ok"]
    assert checked.records.column("trace_id").to_pylist() == ["abcdef0123456789abcdef0123456789"]


def test_integer_text_fields_are_their_digits() -> None:
    table = table_of(
        3,
        model_version=pa.array([2, 10, -1], pa.int64()),
        request_id=pa.array([1001, 1002, 1003], pa.int32()),
    )

    checked = assert_agrees(table)

    assert checked.records.column("request_id").to_pylist() == ["1001", "1002", "1003"]
    assert checked.records.column("model_version").to_pylist() == ["2", "10", "-1"]


@pytest.mark.parametrize(
    "timestamps",
    [
        pa.array([T0_US * 1000 + 123_456_789, 999, None], pa.timestamp("ns", tz="UTC")),
        pa.array([T0_US // 1000, 0, -1], pa.timestamp("ms")),
        pa.array([T0_US // 10**6, 253_402_300_799, 253_402_300_800], pa.timestamp("s")),
        pa.array([T0_US, T0_US + 1, T0_US + 2], pa.timestamp("us", tz="Europe/Berlin")),
        pa.array(
            [T0_US // 10**6, 253_402_300_799 - 3600, 9_300_000_000_000],
            pa.timestamp("s", tz="Europe/Berlin"),
        ),
        pa.array(["2026-11-16T12:00:00.5Z", "2026-11-16 14:00:00+02:00", "not a time"]),
        pa.array([1_794_830_400, 1_794_830_400_123, -5], pa.int64()),
        pa.array([1_794_830_400.25, math.nan, math.inf]),
    ],
)
def test_timestamps_of_every_type(timestamps: pa.Array) -> None:
    table = table_of(3, timestamp=timestamps)

    checked = assert_agrees(table)

    assert 0 in checked.positions


def test_prediction_and_label_values() -> None:
    count = 6
    table = table_of(
        count,
        prediction=pa.array([{"p": [i, i / 2], "q": None} for i in range(count)]),
        label=pa.array([None, 1, 2**64 - 1, 3, 4, 5], pa.uint64()),
    )

    checked = assert_agrees(table)

    assert checked.unsure.tolist() == [2]
    assert checked.records.column("prediction")[1].as_py() == '{"p":[1.0,0.5],"q":null}'
    assert checked.records.column("label").to_pylist() == [None, "1", "3", "4", "5"]


def test_nan_predictions_are_refused_and_null_ones_missing() -> None:
    table = table_of(3, prediction=pa.array([0.5, math.nan, None]))

    checked = assert_agrees(table)

    assert checked.unsure.tolist() == [1]
    assert checked.records.column("prediction").to_pylist() == ["0.5", None]


def test_what_is_left_to_the_row_model() -> None:
    """Maps, unknown columns with values, keys given twice, missing required columns."""
    maps = pa.array([[("host", "h1")], None, []], pa.map_(pa.string(), pa.string()))
    assert assert_agrees(table_of(3, tags=maps)).unsure.tolist() == [0, 2]
    unknown = pa.array([None, "x", None])
    assert assert_agrees(table_of(3, extra=unknown)).unsure.tolist() == [1]
    twice = table_of(2, features=pa.array([{"a": 1.0}] * 2), **{"features.a": pa.array([2.0] * 2)})
    assert assert_agrees(twice).unsure.tolist() == [0, 1]
    missing = pa.table({k: v for k, v in base_columns(2).items() if k != "latency_ms"})
    assert assert_agrees(missing).unsure.tolist() == [0, 1]


def test_dictionary_and_large_string_columns() -> None:
    table = table_of(
        4,
        model_version=pa.array(["v1", "v2", "v1", None]).dictionary_encode(),
        request_id=pa.array(["a", "b", "c", "d"], pa.large_string()),
    )

    checked = assert_agrees(table)

    assert checked.unsure.tolist() == [3]


def test_an_empty_table() -> None:
    checked = assert_agrees(table_of(0))

    assert (len(checked.records), len(checked.unsure)) == (0, 0)


@pytest.mark.parametrize("seed", range(12))
def test_random_tables_agree_with_the_row_model(seed: int) -> None:
    rng = np.random.default_rng(seed)
    count = 60
    columns = base_columns(count)
    for name in ("latency_ms", "input_size", "features.a", "features.b", "prediction"):
        columns[name] = random_numbers(rng, count)
    for name in ("features.s", "tags.host", "tags.zone", "error", "model_version"):
        columns[name] = random_texts(rng, count)
    columns["status"] = pa.array(rng.choice(["ok", "error", "ok", "bad", None], count).tolist())

    assert_agrees(pa.table(columns))


def random_numbers(rng: np.random.Generator, count: int) -> pa.Array:
    kind = rng.integers(0, 4)
    if kind == 0:
        values = rng.normal(0, 1, count) * 10.0 ** rng.integers(-10, 25, count)
        specials = rng.choice([math.nan, math.inf, -1.0, 0.0, -0.0, 1e12, 2e12], count)
        values = np.where(rng.random(count) < 0.15, specials, values)
        return pa.array(values, mask=rng.random(count) < 0.1)
    if kind == 1:
        return pa.array(rng.integers(-(2**40), 2**40, count), mask=rng.random(count) < 0.1)
    if kind == 2:
        return pa.array(rng.normal(0, 5, count).astype(np.float32))
    return pa.array(rng.random(count) < 0.5)


def random_texts(rng: np.random.Generator, count: int) -> pa.Array:
    pieces = ["a", "é", "\t", "\n", "\\", '"', "\x01", "\x00", " ", "🚀", "gpu-1", "x" * 120]
    values = [
        None if rng.random() < 0.1 else "".join(rng.choice(pieces, rng.integers(0, 4)))
        for _ in range(count)
    ]
    return pa.array(values, pa.string())


def test_json_strings_escape_exactly_as_orjson() -> None:
    rng = np.random.default_rng(7)
    alphabet = [chr(c) for c in range(0, 0x80)] + ["é", "\u2028", "\ufeff", "🚀", "\x7f"]
    values = ["".join(rng.choice(alphabet, rng.integers(0, 12))) for _ in range(2_000)]

    encoded = json_strings(pa.array([*values, None], pa.string())).to_pylist()

    assert encoded[:-1] == [orjson.dumps(value).decode() for value in values]
    assert encoded[-1] is None


def test_vouched_records_keep_their_positions_after_failures() -> None:
    table = table_of(5, latency_ms=pa.array([1.0, -1.0, 2.0, None, 3.0]))

    checked = assert_agrees(table)

    assert checked.positions.tolist() == [0, 2, 4]
    assert (
        pc.equal(checked.records.column("latency_ms"), pa.array([1.0, 2.0, 3.0])).to_pylist()
        == [True] * 3
    )


@pytest.mark.parametrize(("seed", "nested"), [(0, True), (1, False), (2, True)])
def test_record_files_agree_with_the_row_model(seed: int, nested: bool) -> None:
    table = record_file_table(300, seed=seed, nested=nested)

    checked = assert_agrees(table)

    assert len(checked.records) > 200
