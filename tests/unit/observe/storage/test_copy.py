"""observe.storage._copy: Postgres COPY text format from Arrow columns."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from observe.storage._copy import copy_text, escape_text


def parse_copy_text(payload: bytes) -> list[list[str | None]]:
    """The rows of a COPY text payload, read by the rules of the format."""
    unescape = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}
    rows = []
    for line in payload.decode().split("\n")[:-1]:
        fields: list[str | None] = []
        for field in line.split("\t"):
            if field == "\\N":
                fields.append(None)
                continue
            out, chars = [], iter(field)
            for char in chars:
                out.append(unescape[next(chars)] if char == "\\" else char)
            fields.append("".join(out))
        rows.append(fields)
    return rows


def test_text_with_special_characters_and_nulls_round_trips() -> None:
    texts = ["plain", "tab\there", "line\nbreak", "back\\slash\\N", "cr\r", None, "ünï 🚀", ""]
    payload = copy_text([pa.array(texts), pa.array([None] * len(texts), pa.string()), "k\t"], 8)

    rows = parse_copy_text(bytes(payload))

    assert [row[0] for row in rows] == texts
    assert all(row[1] is None for row in rows)
    assert all(row[2] == "k\t" for row in rows)


def test_numbers_and_timestamps_are_formatted_by_arrow() -> None:
    at = dt.datetime(2026, 11, 16, 12, 0, 0, 123456, tzinfo=dt.UTC)
    columns = [
        pa.array([1.5, None, 1e-7, 0.1 + 0.2]),
        pa.array([at, None, at, at], pa.timestamp("us", tz="UTC")),
        pa.array([1, 2, None, 4]),
        None,
    ]

    rows = parse_copy_text(bytes(copy_text(columns, 4)))

    assert [row[0] for row in rows] == ["1.5", None, "1e-7", "0.30000000000000004"]
    assert float(rows[3][0] or "") == 0.1 + 0.2
    assert rows[0][1] == "2026-11-16 12:00:00.123456Z"
    assert [row[1] for row in rows[1:3]] == [None, "2026-11-16 12:00:00.123456Z"]
    assert [row[2] for row in rows] == ["1", "2", None, "4"]
    assert all(row[3] is None for row in rows)


def test_sliced_arrays_and_empty_payloads() -> None:
    texts = pa.array(["a", "b\\", "c", "d"]).slice(1, 2)

    assert parse_copy_text(bytes(copy_text([texts], 2))) == [["b\\"], ["c"]]
    assert bytes(copy_text([texts.slice(0, 0)], 0)) == b""
    assert bytes(copy_text(["x", None], 3)) == b"x\t\\N\n" * 3


def test_escape_text() -> None:
    assert escape_text("a\\b\tc\nd\re") == "a\\\\b\\tc\\nd\\re"
