"""API keys: generation, hashing, display prefixes and scopes."""

from __future__ import annotations

import hashlib
import re

import pytest

from observe.auth import (
    DISPLAY_PREFIX_LENGTH,
    KEY_PREFIX,
    Scope,
    allows,
    display_prefix,
    generate_key,
    hash_key,
    parse_scopes,
)


def test_generated_keys_carry_256_random_bits_after_the_prefix() -> None:
    key = generate_key()

    assert key.startswith("obs_")
    assert KEY_PREFIX == "obs_"
    # 32 random bytes in URL-safe base64 without padding
    assert re.fullmatch(r"obs_[A-Za-z0-9_-]{43}", key)


def test_generated_keys_differ() -> None:
    keys = {generate_key() for _ in range(200)}

    assert len(keys) == 200


def test_hash_key_is_the_sha256_hex_digest() -> None:
    assert hash_key("obs_abc") == hashlib.sha256(b"obs_abc").hexdigest()
    assert hash_key("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_hash_key_is_stable_and_distinguishes_keys() -> None:
    key = generate_key()

    assert hash_key(key) == hash_key(key)
    assert hash_key(key) != hash_key(key[:-1])
    assert key not in hash_key(key)


def test_hash_key_handles_non_ascii() -> None:
    assert hash_key("obs_ключ") == hashlib.sha256("obs_ключ".encode()).hexdigest()


def test_display_prefix_is_the_start_of_the_key() -> None:
    key = "obs_ABCDEFGHIJKLMNOP"

    assert display_prefix(key) == "obs_ABCDEFGH"
    assert len(display_prefix(generate_key())) == DISPLAY_PREFIX_LENGTH == 12
    assert display_prefix("obs_x") == "obs_x"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ("ingest", {Scope.INGEST}),
        ("ingest,read", {Scope.INGEST, Scope.READ}),
        (" Ingest , READ ,, ", {Scope.INGEST, Scope.READ}),
        ("admin,admin", {Scope.ADMIN}),
        (["read", "admin"], {Scope.ADMIN, Scope.READ}),
        ([" read "], {Scope.READ}),
    ],
)
def test_parse_scopes(values: str | list[str], expected: set[Scope]) -> None:
    scopes = parse_scopes(values)

    assert scopes == frozenset(expected)
    assert isinstance(scopes, frozenset)


@pytest.mark.parametrize("values", ["ingest,write", ["read", "superuser"]])
def test_parse_scopes_names_an_unknown_scope(values: str | list[str]) -> None:
    unknown = "write" if isinstance(values, str) else "superuser"

    with pytest.raises(ValueError, match=f"unknown scope '{unknown}': use ingest, read, admin"):
        parse_scopes(values)


@pytest.mark.parametrize("values", ["", " , ", [], [""]])
def test_parse_scopes_needs_at_least_one(values: str | list[str]) -> None:
    with pytest.raises(ValueError, match="a key needs at least one scope"):
        parse_scopes(values)


@pytest.mark.parametrize(
    ("granted", "needed", "expected"),
    [
        ({Scope.INGEST}, Scope.INGEST, True),
        ({Scope.INGEST}, Scope.READ, False),
        ({Scope.INGEST}, Scope.ADMIN, False),
        ({Scope.READ}, Scope.READ, True),
        ({Scope.READ}, Scope.INGEST, False),
        ({Scope.INGEST, Scope.READ}, Scope.READ, True),
        ({Scope.INGEST, Scope.READ}, Scope.ADMIN, False),
        ({Scope.ADMIN}, Scope.INGEST, True),
        ({Scope.ADMIN}, Scope.READ, True),
        ({Scope.ADMIN}, Scope.ADMIN, True),
        (set(), Scope.READ, False),
    ],
)
def test_allows(granted: set[Scope], needed: Scope, expected: bool) -> None:
    assert allows(frozenset(granted), needed) is expected


def test_scopes_are_their_names() -> None:
    assert [scope.value for scope in Scope] == ["ingest", "read", "admin"]
    assert Scope("read") == "read"
