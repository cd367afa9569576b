"""The body size limit, counted after decompression: over-large bodies and gzip bombs get 413."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from observe.db.engine import Database
from tests import factories
from tests.conftest import bearer
from tests.integration.api.helpers import app_client, json_array, ndjson, row_counts

MAX_BODY_MB = 0.05
LIMIT_BYTES = int(MAX_BODY_MB * 1024 * 1024)


@pytest.fixture
def limited(db: Database, tmp_path: Path) -> Iterator[Any]:
    """A client of an app whose bodies may hold at most LIMIT_BYTES after decompression."""
    with app_client(db, tmp_path, max_body_mb=MAX_BODY_MB) as client:
        yield client


def post(client: Any, key: str, body: Any, **headers: str) -> Any:
    headers.setdefault("Content-Type", "application/json")
    return client.post("/api/v1/records", content=body, headers={**bearer(key), **headers})


def padded_batch(num_bytes: int) -> bytes:
    """A valid batch of two records, padded with whitespace to `num_bytes`."""
    body = json_array(factories.records(2))
    return body[:-1] + b" " * (num_bytes - len(body)) + b"]"


def assert_too_large(response: Any, db: Database) -> None:
    assert response.status_code == 413, response.text
    assert str(LIMIT_BYTES) in response.json()["detail"]
    assert not any(row_counts(db).values())


def test_a_body_under_the_limit_is_accepted(
    limited: Any, api_keys: dict[str, str], db: Database
) -> None:
    response = post(limited, api_keys["ingest"], padded_batch(LIMIT_BYTES - 100))

    assert response.status_code == 200, response.text
    assert row_counts(db)["inference_records"] == 2


def test_a_plain_body_over_the_limit_gets_413(
    limited: Any, api_keys: dict[str, str], db: Database
) -> None:
    assert_too_large(post(limited, api_keys["ingest"], padded_batch(LIMIT_BYTES + 1)), db)


def test_a_streamed_body_over_the_limit_gets_413_without_a_content_length(
    limited: Any, api_keys: dict[str, str], db: Database
) -> None:
    body = ndjson(factories.records(400))
    assert len(body) > LIMIT_BYTES

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 4096):
            yield body[start : start + 4096]

    response = post(
        limited, api_keys["ingest"], chunks(), **{"Content-Type": "application/x-ndjson"}
    )

    assert_too_large(response, db)


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [("gzip", gzip.compress), ("deflate", zlib.compress)],
)
def test_a_compressed_body_is_measured_after_decompression(
    limited: Any, api_keys: dict[str, str], db: Database, encoding: str, compress: Any
) -> None:
    fits = compress(padded_batch(LIMIT_BYTES - 100))
    too_large = compress(padded_batch(LIMIT_BYTES + 1))
    assert len(too_large) < LIMIT_BYTES / 10

    rejected = post(limited, api_keys["ingest"], too_large, **{"Content-Encoding": encoding})
    assert_too_large(rejected, db)
    accepted = post(limited, api_keys["ingest"], fits, **{"Content-Encoding": encoding})
    assert accepted.status_code == 200, accepted.text


def test_a_gzip_bomb_gets_413(limited: Any, api_keys: dict[str, str], db: Database) -> None:
    bomb = _gzip_of_zeros(16 << 20)
    assert len(bomb) < LIMIT_BYTES, "the compressed bomb itself must fit the limit"

    response = post(limited, api_keys["ingest"], bomb, **{"Content-Encoding": "gzip"})

    assert_too_large(response, db)


def test_a_bomb_split_over_many_gzip_members_gets_413(
    limited: Any, api_keys: dict[str, str], db: Database
) -> None:
    member = gzip.compress(b" " * (LIMIT_BYTES // 4), compresslevel=9)
    bomb = member * 40
    assert len(bomb) < LIMIT_BYTES

    response = post(limited, api_keys["ingest"], bomb, **{"Content-Encoding": "gzip"})

    assert_too_large(response, db)


def _gzip_of_zeros(num_bytes: int) -> bytes:
    """A gzip stream that inflates to `num_bytes` zero bytes, built without holding them."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1 << 20)
    parts = [compressor.compress(block) for _ in range(num_bytes // len(block))]
    parts.append(compressor.flush())
    return b"".join(parts)
