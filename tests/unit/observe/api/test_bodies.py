"""Ingest bodies: decompression under a size limit, JSON array or NDJSON, per-item errors."""

from __future__ import annotations

import asyncio
import gzip
import json
import tracemalloc
import zlib
from collections.abc import Iterable
from typing import Any

import orjson
import pytest
from starlette.requests import Request

from observe.api.bodies import _Inflater, parse_batch, read_body
from observe.api.errors import ApiError
from observe.schemas.records import EventIn, InferenceRecordIn, LabelIn
from tests.factories import event, label, record, records

MIB = 1024 * 1024
BOMB_SIZE = 100_000_000


def request_with(chunks: Iterable[bytes], headers: dict[str, str] | None = None) -> Request:
    """A Starlette request whose body arrives in `chunks`, as an ASGI server delivers it."""
    pending = list(chunks)
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/v1/records",
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
    }

    async def receive() -> dict[str, Any]:
        if not pending:
            return {"type": "http.disconnect"}
        chunk = pending.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

    return Request(scope, receive)


def split(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


def read(chunks: Iterable[bytes], max_bytes: int, **headers: str) -> bytes:
    named = {name.replace("_", "-"): value for name, value in headers.items()}
    return asyncio.run(read_body(request_with(chunks, named), max_bytes))


def refused(chunks: Iterable[bytes], max_bytes: int, **headers: str) -> ApiError:
    with pytest.raises(ApiError) as raised:
        read(chunks, max_bytes, **headers)
    return raised.value


def deflate_raw(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """100 MB of zeros, gzipped to about 100 kB."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(MIB)
    parts = [compressor.compress(zeros) for _ in range(BOMB_SIZE // MIB)]
    parts.append(compressor.compress(bytes(BOMB_SIZE % MIB)) + compressor.flush())
    return b"".join(parts)


# --- read_body ------------------------------------------------------------------------------

PAYLOAD = orjson.dumps(records(50))


@pytest.mark.parametrize("chunk_size", [1, 7, 4096, len(PAYLOAD)])
def test_read_body_joins_plain_chunks(chunk_size: int) -> None:
    assert read(split(PAYLOAD, chunk_size), len(PAYLOAD)) == PAYLOAD


@pytest.mark.parametrize("encoding", ["gzip", "x-gzip", "GZIP", " gzip "])
@pytest.mark.parametrize("chunk_size", [1, 100, 1 << 20])
def test_read_body_inflates_gzip(encoding: str, chunk_size: int) -> None:
    body = gzip.compress(PAYLOAD)

    assert read(split(body, chunk_size), len(PAYLOAD), content_encoding=encoding) == PAYLOAD


@pytest.mark.parametrize("encoding", ["identity", ""])
def test_read_body_identity_encoding(encoding: str) -> None:
    assert read([PAYLOAD], len(PAYLOAD), content_encoding=encoding) == PAYLOAD


def test_read_body_inflates_deflate_zlib_stream() -> None:
    body = zlib.compress(PAYLOAD)

    assert read(split(body, 64), len(PAYLOAD), content_encoding="deflate") == PAYLOAD


def test_read_body_inflates_concatenated_gzip_members() -> None:
    first, second = PAYLOAD[:1000], PAYLOAD[1000:]
    body = gzip.compress(first) + gzip.compress(second)

    assert read(split(body, 33), len(PAYLOAD), content_encoding="gzip") == PAYLOAD


def test_read_body_allows_exactly_the_limit() -> None:
    assert read([PAYLOAD], len(PAYLOAD)) == PAYLOAD
    assert read([gzip.compress(PAYLOAD)], len(PAYLOAD), content_encoding="gzip") == PAYLOAD


def test_read_body_refuses_one_byte_over_the_limit() -> None:
    error = refused(split(PAYLOAD, 100), len(PAYLOAD) - 1)

    assert error.status_code == 413
    assert f"limit of {len(PAYLOAD) - 1} bytes" in error.detail


def test_read_body_counts_the_limit_after_decompression() -> None:
    body = gzip.compress(PAYLOAD)
    assert len(body) < len(PAYLOAD) // 4

    error = refused([body], len(PAYLOAD) - 1, content_encoding="gzip")

    assert error.status_code == 413
    assert "after decompression" in error.detail


def test_read_body_refuses_a_declared_length_above_the_limit_before_reading() -> None:
    async def receive() -> dict[str, Any]:
        raise AssertionError("the body was read")

    request = Request(
        {"type": "http", "method": "POST", "path": "/", "headers": [(b"content-length", b"5000")]},
        receive,
    )
    with pytest.raises(ApiError) as raised:
        asyncio.run(read_body(request, 4999))

    assert raised.value.status_code == 413
    assert "5000 bytes exceeds the limit of 4999 bytes" in raised.value.detail


def test_read_body_trusts_no_declared_length_below_the_limit() -> None:
    error = refused([PAYLOAD], 100, content_length="10")

    assert error.status_code == 413


@pytest.mark.parametrize("encoding", ["br", "zstd", "compress", "gzip, br"])
def test_read_body_refuses_an_unsupported_encoding(encoding: str) -> None:
    error = refused([PAYLOAD], len(PAYLOAD), content_encoding=encoding)

    assert error.status_code == 415
    assert repr(encoding) in error.detail


@pytest.mark.parametrize("cut", [1, 4, 8, 100])
def test_read_body_refuses_truncated_gzip(cut: int) -> None:
    body = gzip.compress(PAYLOAD)[:-cut]

    error = refused(split(body, 50), len(PAYLOAD), content_encoding="gzip")

    assert error.status_code == 400
    assert error.detail == "the gzip body is truncated"


def test_read_body_refuses_a_truncated_second_gzip_member() -> None:
    body = gzip.compress(PAYLOAD[:100]) + gzip.compress(PAYLOAD[100:])[:20]

    error = refused([body], len(PAYLOAD), content_encoding="gzip")

    assert (error.status_code, error.detail) == (400, "the gzip body is truncated")


def test_read_body_refuses_an_empty_gzip_body() -> None:
    error = refused([b""], 100, content_encoding="gzip")

    assert error.status_code == 400


@pytest.mark.parametrize(
    ("body", "encoding"),
    [
        (PAYLOAD, "gzip"),
        (b"\x1f\x8b\x08\x00garbage-after-a-gzip-magic", "gzip"),
        (gzip.compress(PAYLOAD) + b"trailing junk", "gzip"),
        (deflate_raw(PAYLOAD)[:10] + b"\xff" * 50, "deflate"),
        (PAYLOAD, "deflate"),
    ],
)
def test_read_body_refuses_corrupt_compressed_data(body: bytes, encoding: str) -> None:
    error = refused([body], 10 * len(PAYLOAD), content_encoding=encoding)

    assert error.status_code == 400
    assert error.detail.startswith("body is not valid compressed data")


def test_read_body_refuses_a_gzip_bomb_within_bounded_memory(gzip_bomb: bytes) -> None:
    limit = MIB
    chunks = split(gzip_bomb, 64 * 1024)  # each chunk inflates to about 64 MB
    assert len(gzip_bomb) < limit

    tracemalloc.start()
    try:
        error = refused(chunks, limit, content_encoding="gzip")
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert error.status_code == 413
    assert peak_bytes < 8 * limit


def test_inflater_never_expands_more_than_the_limit_at_once(gzip_bomb: bytes) -> None:
    limit = MIB
    inflater = _Inflater(16 + zlib.MAX_WBITS, limit)

    parts = inflater.feed(gzip_bomb)  # the whole bomb in one call

    assert sum(len(part) for part in parts) == limit + 1
    assert max(len(part) for part in parts) <= limit + 1
    assert not inflater.finished


def test_inflater_decodes_everything_within_the_limit() -> None:
    inflater = _Inflater(16 + zlib.MAX_WBITS, len(PAYLOAD) + 10)
    body = gzip.compress(PAYLOAD) + gzip.compress(PAYLOAD[:10])
    assert not inflater.finished

    inflated = b"".join(part for chunk in split(body, 10) for part in inflater.feed(chunk))

    assert inflated == PAYLOAD + PAYLOAD[:10]
    assert inflater.finished


# --- parse_batch ----------------------------------------------------------------------------

ITEMS = records(3)
ARRAY = orjson.dumps(ITEMS)
NDJSON = b"\n".join(orjson.dumps(item) for item in ITEMS) + b"\n"
REQUEST_IDS = ["req-0", "req-1", "req-2"]


def parse(
    body: bytes,
    content_type: str | None = "application/json",
    item_type: type[Any] = InferenceRecordIn,
    max_items: int = 100,
) -> list[Any]:
    return parse_batch(body, content_type, item_type, max_items=max_items)


def parse_refused(body: bytes, content_type: str | None = "application/json", **kwargs: Any):
    with pytest.raises(ApiError) as raised:
        parse(body, content_type, **kwargs)
    return raised.value


def item_errors(error: ApiError) -> list[tuple[Any, ...]]:
    return [(e.index, e.line, e.field, e.message) for e in error.errors or []]


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON ; Charset=UTF-8",
        "text/json",
        None,
        "",
    ],
)
def test_parse_batch_json_array(content_type: str | None) -> None:
    items = parse(ARRAY, content_type)

    assert [item.request_id for item in items] == REQUEST_IDS
    assert all(isinstance(item, InferenceRecordIn) for item in items)


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-ndjson",
        "application/ndjson",
        "application/jsonl",
        "application/x-jsonlines",
        "application/jsonlines",
        "application/json-lines",
        "application/x-ndjson; charset=utf-8",
        # NDJSON sent as JSON or without a type is recognised by its first object
        "application/json",
        None,
    ],
)
def test_parse_batch_ndjson(content_type: str | None) -> None:
    assert [item.request_id for item in parse(NDJSON, content_type)] == REQUEST_IDS


def test_parse_batch_ndjson_skips_blank_lines_and_reads_crlf() -> None:
    lines = [orjson.dumps(item) for item in ITEMS]
    body = b"\n\n" + lines[0] + b"\r\n  \n\t\n" + lines[1] + b"\r\n" + lines[2] + b"\n\n"

    assert [item.request_id for item in parse(body, "application/x-ndjson")] == REQUEST_IDS


@pytest.mark.parametrize("content_type", ["application/json", None, "application/x-ndjson"])
def test_parse_batch_single_object(content_type: str | None) -> None:
    [item] = parse(orjson.dumps(record(request_id="only")), content_type)

    assert item.request_id == "only"


@pytest.mark.parametrize("content_type", ["application/json", None])
def test_parse_batch_single_pretty_printed_object(content_type: str | None) -> None:
    body = json.dumps(record(request_id="pretty"), indent=2).encode()

    [item] = parse(body, content_type)

    assert item.request_id == "pretty"


def test_parse_batch_single_invalid_object_names_item_0() -> None:
    body = json.dumps(record(latency_ms=-1), indent=2).encode()

    error = parse_refused(body, "application/json")

    assert error.status_code == 422
    assert item_errors(error) == [
        (0, None, "latency_ms", "Input should be greater than or equal to 0")
    ]


def test_parse_batch_pretty_printed_array() -> None:
    body = json.dumps(ITEMS, indent=2).encode()

    assert [item.request_id for item in parse(body)] == REQUEST_IDS


def test_parse_batch_other_item_types() -> None:
    [item] = parse(orjson.dumps([label(label="fraud")]), item_type=LabelIn)
    [deploy] = parse(orjson.dumps(event()), "application/x-ndjson", item_type=EventIn)

    assert item.label == "fraud"
    assert deploy.kind == "deploy"


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/xml", "multipart/form-data; boundary=x"]
)
@pytest.mark.parametrize("body", [ARRAY, NDJSON])
def test_parse_batch_refuses_other_media_types(body: bytes, content_type: str) -> None:
    error = parse_refused(body, content_type)

    assert error.status_code == 415
    assert repr(content_type.split(";")[0]) in error.detail


def test_parse_batch_refuses_an_untyped_body_that_is_not_json() -> None:
    assert parse_refused(b"model=m", None).status_code == 415


@pytest.mark.parametrize("body", [b"", b"   ", b"\n\n \r\n"])
def test_parse_batch_refuses_an_empty_body(body: bytes) -> None:
    error = parse_refused(body)

    assert (error.status_code, error.detail) == (400, "empty body: send a JSON array or NDJSON")


@pytest.mark.parametrize("content_type", ["application/json", None])
def test_parse_batch_refuses_an_empty_batch(content_type: str | None) -> None:
    error = parse_refused(b" [ ] ", content_type)

    assert (error.status_code, error.detail) == (422, "the batch is empty")


@pytest.mark.parametrize("body", [b"[{", b"[1,", b'[{"model": }]', b"\xff\xfe", b'["\xff"]'])
def test_parse_batch_refuses_undecodable_json(body: bytes) -> None:
    error = parse_refused(body)

    assert error.status_code == 400
    assert error.detail.startswith("body is not valid JSON")


def test_parse_batch_refuses_undecodable_ndjson_naming_the_line() -> None:
    body = b"\n" + orjson.dumps(ITEMS[0]) + b"\n\n" + b'{"model": "m",' + b"\n"

    error = parse_refused(body, "application/x-ndjson")

    assert error.status_code == 400
    assert error.detail.startswith("line 4 is not valid JSON")


@pytest.mark.parametrize("body", [b"1", b'"records"', b"null", b"true"])
def test_parse_batch_names_the_item_type_when_the_body_is_no_array(body: bytes) -> None:
    error = parse_refused(body)

    assert error.status_code == 422
    assert error.detail == "body must be a JSON array of InferenceRecord objects or NDJSON"


@pytest.mark.parametrize("body", [b"[1]", b"[[]]", b'["req-0"]'])
def test_parse_batch_refuses_array_items_that_are_no_objects(body: bytes) -> None:
    error = parse_refused(body)

    assert error.status_code == 422
    assert item_errors(error) == [(0, None, None, "Input should be an object")]


def bad_batch() -> list[dict[str, Any]]:
    items = records(4)
    items[1]["colour"] = "red"
    items[1]["latency_ms"] = -1
    items[3]["features"] = {"amount": [1, 2]}
    return items


def test_parse_batch_array_reports_every_bad_item_by_index_and_field() -> None:
    error = parse_refused(orjson.dumps(bad_batch()))

    assert error.status_code == 422
    assert sorted(item_errors(error)) == [
        (1, None, "colour", "unknown field"),
        (1, None, "latency_ms", "Input should be greater than or equal to 0"),
        (3, None, "features.amount", "must be a number, string, boolean or null"),
    ]
    assert error.detail.startswith("invalid item 1 field ")
    assert error.detail.endswith("and 2 more; nothing of this batch was stored")


def test_parse_batch_ndjson_reports_index_and_line_of_every_bad_item() -> None:
    lines = [orjson.dumps(item) for item in bad_batch()]
    body = b"\n".join([b"", lines[0], lines[1], b"", lines[2], lines[3]])

    error = parse_refused(body, "application/x-ndjson")

    assert error.status_code == 422
    assert sorted(item_errors(error)) == [
        (1, 3, "colour", "unknown field"),
        (1, 3, "latency_ms", "Input should be greater than or equal to 0"),
        (3, 6, "features.amount", "must be a number, string, boolean or null"),
    ]
    assert error.detail.startswith("invalid item 1 (line 3) field ")


def test_parse_batch_reports_a_missing_field() -> None:
    items = records(2)
    del items[1]["request_id"]

    error = parse_refused(orjson.dumps(items))

    assert item_errors(error) == [(1, None, "request_id", "field required")]
    assert error.detail == (
        "invalid item 1 field request_id: field required; nothing of this batch was stored"
    )


def test_parse_batch_reports_at_most_50_errors() -> None:
    items = [{**item, "latency_ms": -1} for item in records(80)]

    error = parse_refused(orjson.dumps(items), max_items=100)

    assert len(error.errors or []) == 50
    assert "and 79 more" in error.detail


@pytest.mark.parametrize("body", [ARRAY, NDJSON])
def test_parse_batch_allows_exactly_max_items(body: bytes) -> None:
    assert len(parse(body, None, max_items=3)) == 3


@pytest.mark.parametrize("body", [ARRAY, NDJSON])
def test_parse_batch_refuses_more_than_max_items(body: bytes) -> None:
    error = parse_refused(body, None, max_items=2)

    assert (error.status_code, error.detail) == (413, "batch has more than 2 items; split it")


def test_parse_batch_ndjson_counts_items_not_errors_against_max_items() -> None:
    lines = [orjson.dumps(item) for item in bad_batch()]

    error = parse_refused(b"\n".join(lines), "application/x-ndjson", max_items=4)

    assert error.status_code == 422
