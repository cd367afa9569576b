from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from collectors.files import (
    FileFormatError,
    Row,
    RowError,
    count_rows_hint,
    datetime_range,
    detect_format,
    has_tables,
    read_rows,
    read_tables,
    table_rows,
)

DATA = Path(__file__).parents[2] / "data"
RECORD_FILES = (
    "records.jsonl",
    "records.jsonl.gz",
    "records.json",
    "records.csv",
    "records.parquet",
    "records_nested.parquet",
)
T0_EPOCH = 1_794_830_400


def rows_of(path: Path, fmt: str | None = None, **kwargs: Any) -> list[Row | RowError]:
    return [row for chunk in read_rows(path, detect_format(path, fmt), **kwargs) for row in chunk]


def data_of(path: Path) -> list[dict[str, Any]]:
    rows = rows_of(path)
    assert all(isinstance(row, Row) for row in rows), rows
    return [row.data for row in rows if isinstance(row, Row)]


def write_parquet(path: Path, columns: dict[str, Any]) -> Path:
    pq.write_table(pa.table(columns), path)
    return path


# --- detect_format -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.jsonl", "jsonl"),
        ("a.ndjson", "jsonl"),
        ("a.json", "json"),
        ("a.csv", "csv"),
        ("a.parquet", "parquet"),
        ("a.pq", "parquet"),
        ("a.jsonl.gz", "jsonl"),
        ("a.csv.gz", "csv"),
        ("export.2026-11-16.CSV", "csv"),
    ],
)
def test_detect_format_goes_by_the_suffix_looking_through_gz(name: str, expected: str) -> None:
    assert detect_format(Path(name)) == expected


def test_detect_format_prefers_the_declared_format() -> None:
    assert detect_format(Path("records.txt"), "jsonl") == "jsonl"
    assert detect_format(Path("records.csv"), "auto") == "csv"


@pytest.mark.parametrize("name", ["records.txt", "records", "records.gz", "records.xlsx"])
def test_detect_format_refuses_an_unknown_suffix_and_says_what_to_pass(name: str) -> None:
    with pytest.raises(FileFormatError, match="--format"):
        detect_format(Path(name))


def test_detect_format_refuses_an_unknown_declared_format() -> None:
    with pytest.raises(FileFormatError, match="unknown format 'xml'"):
        detect_format(Path("records.jsonl"), "xml")


# --- the same records in every format ------------------------------------------------------------


@pytest.mark.parametrize("name", RECORD_FILES)
def test_every_format_decodes_the_fixture_records_alike(name: str) -> None:
    reference = [orjson.loads(line) for line in (DATA / "records.jsonl").read_bytes().splitlines()]

    decoded = data_of(DATA / name)

    assert len(decoded) == 20
    assert decoded == reference


@pytest.mark.parametrize("name", RECORD_FILES)
def test_nested_fields_come_out_as_the_contract_shapes(name: str) -> None:
    decoded = {row["request_id"]: row for row in data_of(DATA / name)}

    first = decoded["req-0"]
    assert first["features"] == {"amount": 5.25, "country": "DE", "card_present": True, "num_tx": 0}
    assert first["tags"] == {"host": "gpu-1", "region": "eu-west", "zone": "1"}
    assert first["timestamp"] == T0_EPOCH
    assert first["label"] == 1
    # A missing feature is a null value (a missing input), not an absent key.
    assert decoded["req-5"]["features"]["amount"] is None
    # A missing tag is absent; tags are strings even where the column is numeric.
    assert decoded["req-6"]["tags"] == {"host": "gpu-1", "zone": "1"}
    # Missing flat values are left out, so defaults apply.
    assert "label" not in decoded["req-1"]
    assert "error" not in decoded["req-0"]
    assert decoded["req-7"]["error"] == "feature store timed out"


@pytest.mark.parametrize(
    ("name", "first_number"),
    [("records.jsonl", 1), ("records.json", 1), ("records.parquet", 1), ("records.csv", 2)],
)
def test_rows_carry_their_number_in_the_file(name: str, first_number: int) -> None:
    # CSV counts the header as line 1, so row numbers match what an editor shows.
    numbers = [row.number for row in rows_of(DATA / name)]

    assert numbers == list(range(first_number, first_number + 20))


@pytest.mark.parametrize(
    "name", ["records.jsonl", "records.json", "records.csv", "records.parquet"]
)
def test_rows_come_in_chunks_of_at_most_chunk_size(name: str) -> None:
    chunks = list(read_rows(DATA / name, detect_format(DATA / name), chunk_size=6))

    assert [len(chunk) for chunk in chunks] == [6, 6, 6, 2]
    assert [row.number for row in chunks[1]] == [row.number for row in rows_of(DATA / name)][6:12]


# --- JSON lines and JSON ------------------------------------------------------------------------


def test_bad_lines_are_yielded_as_row_errors_with_their_line_numbers() -> None:
    rows = rows_of(DATA / "records_with_errors.jsonl")

    # Line 2 is blank: skipped, not an error, and not renumbering what follows.
    assert [row.number for row in rows] == [1, 3, 4, 5, 6, 7, 8]
    errors = {row.number: row for row in rows if isinstance(row, RowError)}
    assert set(errors) == {3, 5}
    assert errors[3].message.startswith("not valid JSON")
    assert errors[3].raw.startswith('{"model": "error-model"')
    assert errors[5].message == "each line must be a JSON object"
    assert errors[5].raw.strip() == "[1, 2, 3]"
    good = [
        row.data["request_id"] for row in rows if isinstance(row, Row) and "request_id" in row.data
    ]
    # Rows that decode but would fail validation are still rows: the caller validates.
    assert good == ["err-0", "err-1", "err-bad-latency", "err-2"]


def test_blank_and_whitespace_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    path.write_bytes(b'\n{"a": 1}\n   \n\r\n{"a": 2}\r\n\n')

    rows = rows_of(path)

    assert rows == [Row(2, {"a": 1}), Row(5, {"a": 2})]


def test_a_line_that_is_not_utf8_is_a_row_error_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": "\xff\xfe"}\n{"a": 3}\n')

    rows = rows_of(path)

    assert [type(row) for row in rows] == [Row, RowError, Row]
    assert rows[1].number == 2


def test_gzipped_jsonl_is_decompressed() -> None:
    assert data_of(DATA / "records.jsonl.gz") == data_of(DATA / "records.jsonl")


def test_gzipped_csv_is_decompressed(tmp_path: Path) -> None:
    path = tmp_path / "records.csv.gz"
    path.write_bytes(gzip.compress((DATA / "records.csv").read_bytes()))

    assert data_of(path) == data_of(DATA / "records.csv")


def test_a_json_array_may_hold_non_objects_which_become_row_errors(tmp_path: Path) -> None:
    path = tmp_path / "items.json"
    path.write_bytes(b'[{"a": 1}, 2, {"a": 3}]')

    rows = rows_of(path)

    assert rows[0] == Row(1, {"a": 1})
    assert isinstance(rows[1], RowError)
    assert (rows[1].number, rows[1].message) == (2, "each item must be a JSON object")
    assert rows[2] == Row(3, {"a": 3})


def test_a_broken_json_array_is_a_file_error(tmp_path: Path) -> None:
    path = tmp_path / "items.json"
    path.write_bytes(b'[{"a": 1}, {"a": ')

    with pytest.raises(FileFormatError, match=r"items\.json is not valid JSON"):
        rows_of(path)


def test_a_json_file_with_one_pretty_printed_object_is_one_row(tmp_path: Path) -> None:
    path = tmp_path / "record.json"
    path.write_bytes(orjson.dumps({"model": "m", "features": {"x": 1}}, option=orjson.OPT_INDENT_2))

    assert rows_of(path) == [Row(1, {"model": "m", "features": {"x": 1}})]


def test_a_json_file_of_json_lines_is_read_as_lines(tmp_path: Path) -> None:
    path = tmp_path / "records.json"
    path.write_bytes(b'{"a": 1}\n{"a": 2}\n')

    assert rows_of(path) == [Row(1, {"a": 1}), Row(2, {"a": 2})]


@pytest.mark.parametrize("name", ["records.jsonl", "records.json"])
def test_a_utf8_byte_order_mark_is_not_part_of_the_first_row(tmp_path: Path, name: str) -> None:
    # Windows tools (Excel, PowerShell) write one at the start of UTF-8 files.
    path = tmp_path / name
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\n{"a": 2}\n')

    assert rows_of(path) == [Row(1, {"a": 1}), Row(2, {"a": 2})]


# --- CSV ----------------------------------------------------------------------------------------


def test_csv_empty_cells_are_missing_values(tmp_path: Path) -> None:
    path = tmp_path / "records.csv"
    path.write_text(
        'request_id,label,features.amount,features.country,tags.host\na,,1.5,"",gpu-1\nb,1,,DE,\n'
    )

    rows = data_of(path)

    # An empty quoted string is a value; an empty cell is missing.
    assert rows[0] == {
        "request_id": "a",
        "features": {"amount": 1.5, "country": ""},
        "tags": {"host": "gpu-1"},
    }
    assert rows[1] == {
        "request_id": "b",
        "label": 1,
        "features": {"amount": None, "country": "DE"},
        "tags": {},
    }


def test_csv_timestamps_keep_their_offset() -> None:
    rows = data_of(DATA / "metrics.csv")

    assert len(rows) == 12
    assert rows[0]["timestamp"] == dt.datetime(2026, 11, 16, 12, 0, tzinfo=dt.UTC)
    assert rows[0]["tags"] == {"gpu_model": "H100"}
    assert {row["name"] for row in rows} == {"gpu_utilization_pct", "gpu_temperature_c"}


def test_csv_tags_are_stringified_as_json_spells_them(tmp_path: Path) -> None:
    path = tmp_path / "records.csv"
    path.write_text("tags.canary,tags.zone,tags.shard\ntrue,1,0.5\nfalse,2,1.5\n")

    rows = data_of(path)

    assert [row["tags"] for row in rows] == [
        {"canary": "true", "zone": "1", "shard": "0.5"},
        {"canary": "false", "zone": "2", "shard": "1.5"},
    ]


def test_a_csv_with_rows_of_the_wrong_width_is_a_file_error(tmp_path: Path) -> None:
    path = tmp_path / "records.csv"
    path.write_text("model,request_id\nm,a\nm,b,extra\n")

    with pytest.raises(FileFormatError, match=r"records\.csv is not a readable CSV file"):
        rows_of(path)


# --- Parquet ------------------------------------------------------------------------------------


def test_parquet_nan_features_become_none_in_dotted_and_struct_columns(tmp_path: Path) -> None:
    nan = float("nan")
    struct = pa.StructArray.from_arrays([pa.array([nan, 2.0])], names=["y"])
    path = write_parquet(
        tmp_path / "features.parquet",
        {"request_id": ["a", "b"], "features.x": [1.0, nan], "features": struct},
    )

    rows = data_of(path)

    assert rows == [
        {"request_id": "a", "features": {"y": None, "x": 1.0}},
        {"request_id": "b", "features": {"y": 2.0, "x": None}},
    ]


def test_parquet_map_tags_drop_nulls_and_are_strings(tmp_path: Path) -> None:
    tags = pa.array(
        [[("host", "gpu-1"), ("region", None)], [("host", "gpu-2")], None],
        type=pa.map_(pa.string(), pa.string()),
    )
    struct_tags = pa.StructArray.from_arrays(
        [pa.array([1, None, 3]), pa.array([True, False, None])], names=["zone", "canary"]
    )
    path = write_parquet(tmp_path / "tags.parquet", {"request_id": ["a", "b", "c"], "tags": tags})
    struct_path = write_parquet(tmp_path / "struct_tags.parquet", {"tags": struct_tags})

    assert [row.get("tags") for row in data_of(path)] == [
        {"host": "gpu-1"},
        {"host": "gpu-2"},
        None,
    ]
    assert [row["tags"] for row in data_of(struct_path)] == [
        {"zone": "1", "canary": "true"},
        {"canary": "false"},
        {"zone": "3"},
    ]


def test_parquet_timestamps_and_nested_predictions_survive(tmp_path: Path) -> None:
    moment = dt.datetime(2026, 11, 16, 12, 0, tzinfo=dt.UTC)
    prediction = pa.StructArray.from_arrays(
        [pa.array([3]), pa.array([0.9])], names=["top_item", "score"]
    )
    path = write_parquet(
        tmp_path / "records.parquet",
        {"timestamp": pa.array([moment], pa.timestamp("ms", tz="UTC")), "prediction": prediction},
    )

    assert data_of(path) == [{"timestamp": moment, "prediction": {"top_item": 3, "score": 0.9}}]


def test_count_rows_hint_reads_parquet_metadata_only() -> None:
    assert count_rows_hint(DATA / "records.parquet", "parquet") == 20
    assert count_rows_hint(DATA / "records_nested.parquet", "parquet") == 20
    assert count_rows_hint(DATA / "records.jsonl", "jsonl") is None
    assert count_rows_hint(DATA / "records.csv", "csv") is None


def test_an_unreadable_parquet_file_is_a_file_error(tmp_path: Path) -> None:
    path = tmp_path / "records.parquet"
    path.write_bytes(b"PAR1 this is not really parquet")

    with pytest.raises(FileFormatError, match=r"records\.parquet is not a readable Parquet file"):
        count_rows_hint(path, "parquet")
    with pytest.raises(FileFormatError, match=r"records\.parquet is not a readable Parquet file"):
        rows_of(path)


def test_a_jsonl_file_named_parquet_is_a_file_error_not_garbage() -> None:
    with pytest.raises(FileFormatError, match="not a readable Parquet file"):
        rows_of(DATA / "records.jsonl", "parquet")


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv", "parquet"])
def test_a_missing_file_is_a_file_error(tmp_path: Path, fmt: str) -> None:
    with pytest.raises(FileFormatError, match="does not exist"):
        rows_of(tmp_path / "nothing.here", fmt)


def test_counting_the_rows_of_a_missing_parquet_file_says_it_is_missing(tmp_path: Path) -> None:
    with pytest.raises(FileFormatError, match=r"nothing\.parquet does not exist"):
        count_rows_hint(tmp_path / "nothing.parquet", "parquet")


# --- Arrow tables -------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "first_number"), [("records.csv", 2), ("records.parquet", 1)])
def test_tables_come_in_chunks_numbered_like_rows(name: str, first_number: int) -> None:
    chunks = list(read_tables(DATA / name, detect_format(DATA / name), chunk_size=6))

    assert [chunk.table.num_rows for chunk in chunks] == [6, 6, 6, 2]
    assert [chunk.first_number for chunk in chunks] == [first_number + 6 * i for i in range(4)]
    rows = [row for chunk in chunks for row in table_rows(chunk)]
    assert rows == rows_of(DATA / name)


def test_csv_tables_span_read_blocks(tmp_path: Path) -> None:
    """CSV is read in blocks of 4 MiB; chunks are cut by row count, not by block."""
    path = tmp_path / "records.csv"
    lines = ["request_id,note"] + [f"r{i},{'n' * 1000}" for i in range(9_000)]
    path.write_text("\n".join(lines) + "\n")

    chunks = list(read_tables(path, "csv", chunk_size=4_000))

    assert [chunk.table.num_rows for chunk in chunks] == [4_000, 4_000, 1_000]
    assert [chunk.first_number for chunk in chunks] == [2, 4_002, 8_002]
    assert chunks[2].table.column("request_id")[0].as_py() == "r8000"


def test_table_rows_of_chosen_positions_keep_their_numbers() -> None:
    [chunk] = read_tables(DATA / "records.parquet", "parquet", chunk_size=100)

    rows = table_rows(chunk, [3, 0, 17])

    assert [row.number for row in rows] == [4, 1, 18]
    assert rows == [rows_of(DATA / "records.parquet")[i] for i in (3, 0, 17)]


def test_only_csv_and_parquet_are_read_as_tables() -> None:
    assert [fmt for fmt in ("jsonl", "json", "csv", "parquet") if has_tables(fmt)] == [
        "csv",
        "parquet",
    ]
    with pytest.raises(ValueError, match="not read as tables"):
        next(read_tables(DATA / "records.jsonl", "jsonl"))


def test_nanosecond_timestamps_are_cut_to_microseconds(tmp_path: Path) -> None:
    at = dt.datetime(2026, 11, 16, 12, 0, 0, 123456, tzinfo=dt.UTC)
    nanos = int(at.timestamp()) * 10**9 + 123_456_999
    path = write_parquet(
        tmp_path / "t.parquet", {"timestamp": pa.array([nanos], pa.timestamp("ns", tz="UTC"))}
    )

    [row] = rows_of(path)

    assert isinstance(row, Row)
    assert type(row.data["timestamp"]) is dt.datetime
    assert row.data["timestamp"] == at


def test_a_timestamp_beyond_what_python_holds_is_a_row_error(tmp_path: Path) -> None:
    seconds = pa.array([1_794_830_400, 300_000_000_000, None], pa.timestamp("s"))
    path = write_parquet(
        tmp_path / "t.parquet", {"timestamp": seconds, "request_id": ["a", "b", "c"]}
    )

    rows = rows_of(path)

    assert [type(row) for row in rows] == [Row, RowError, Row]
    assert rows[1].message == "timestamp: timestamp outside the years 1 to 9999"  # type: ignore[union-attr]
    assert rows[2] == Row(3, {"request_id": "c"})


def test_datetime_range_leaves_a_day_for_time_zones() -> None:
    assert datetime_range(pa.timestamp("s")) == (-62_135_596_800, 253_402_300_800)
    assert datetime_range(pa.timestamp("ms", tz="UTC"))[1] == 253_402_300_800_000
    low, high = datetime_range(pa.timestamp("s", tz="Europe/Berlin"))
    assert (low, high) == (-62_135_596_800 + 86_400, 253_402_300_800 - 86_400)
