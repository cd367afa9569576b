"""Settings: defaults, environment and .env reading, normalisation and refusals."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from observe.config import DEFAULT_ROLLUP_TAGS, Settings, normalise_database_url
from tests.conftest import make_settings

README = Path(__file__).resolve().parents[3] / "README.md"
POSTGRES = "postgresql+psycopg://observe:pw@db:5432/observe"
GOOD_KEY = "k3y-7f9c2a61d04b4e8e9a3b5c6d7e8f9a0b"


def refusal(**overrides: object) -> str:
    """The message of the one validation error these settings cause."""
    with pytest.raises(ValidationError) as raised:
        make_settings(**overrides)
    [error] = raised.value.errors()
    return f"{'.'.join(map(str, error['loc']))}: {error['msg']}"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh home directory and working directory (without a .env file)."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


# --- defaults -------------------------------------------------------------------------------


def test_defaults_use_a_sqlite_file_under_the_expanded_data_dir(home: Path) -> None:
    settings = Settings()

    assert settings.data_dir == home / ".observe"
    assert settings.database_url == f"sqlite:///{home / '.observe' / 'observe.db'}"
    assert settings.is_sqlite


def test_defaults(home: Path) -> None:
    settings = Settings()

    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.auth_enabled is True
    assert settings.bootstrap_admin_key is None
    assert settings.migrate_on_start is True
    assert settings.max_body_bytes == 32 * 1024 * 1024
    assert settings.rollup_tags == DEFAULT_ROLLUP_TAGS
    assert settings.log_level == "info"
    assert settings.base_url == "http://127.0.0.1:8080"


def test_sqlite_file_follows_a_given_data_dir(tmp_path: Path) -> None:
    settings = make_settings(data_dir=tmp_path / "state")

    assert settings.database_url == f"sqlite:///{tmp_path / 'state' / 'observe.db'}"


def test_data_dir_expands_the_home_directory(home: Path) -> None:
    assert make_settings(data_dir="~/elsewhere").data_dir == home / "elsewhere"


def test_an_explicit_database_url_wins_over_the_data_dir(tmp_path: Path) -> None:
    settings = make_settings(data_dir=tmp_path, database_url=POSTGRES)

    assert settings.database_url == POSTGRES
    assert not settings.is_sqlite


def test_max_body_bytes_is_in_mebibytes() -> None:
    assert make_settings(max_body_mb=0.5).max_body_bytes == 524_288


# --- database URL ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u:p@h:5432/db", "postgresql+psycopg://u:p@h:5432/db"),
        ("postgresql://u:p@h/db?sslmode=require", "postgresql+psycopg://u:p@h/db?sslmode=require"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("  postgres://h/db\n", "postgresql+psycopg://h/db"),
        ("sqlite:////var/lib/observe/observe.db", "sqlite:////var/lib/observe/observe.db"),
        ("sqlite:///relative.db", "sqlite:///relative.db"),
        ("sqlite://", "sqlite://"),
        ("", ""),
    ],
)
def test_normalise_database_url(url: str, expected: str) -> None:
    assert normalise_database_url(url) == expected


def test_settings_normalise_the_database_url() -> None:
    assert make_settings(database_url="postgres://h/db").database_url == "postgresql+psycopg://h/db"


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("mysql://u:p@h/db", "mysql"),
        ("postgresql+psycopg2://h/db", "postgresql+psycopg2"),
        ("postgresql+asyncpg://h/db", "postgresql+asyncpg"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite"),
        ("oracle://h", "oracle"),
    ],
)
def test_unsupported_database_url_schemes_are_refused(url: str, scheme: str) -> None:
    assert refusal(database_url=url) == (
        f"database_url: Value error, unsupported database URL scheme {scheme!r}: "
        "use sqlite:// or postgresql://"
    )


def test_a_database_url_without_scheme_is_refused_without_echoing_it() -> None:
    message = refusal(database_url="observe:s3cret@db.internal/observe")

    assert message == (
        "database_url: Value error, the database URL has no scheme: use sqlite:// or postgresql://"
    )
    assert "s3cret" not in message


# --- environment and .env -------------------------------------------------------------------


def test_environment_variables_with_the_observe_prefix(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OBSERVE_DATABASE_URL", "postgres://h/db")
    monkeypatch.setenv("OBSERVE_PORT", "9001")
    monkeypatch.setenv("OBSERVE_AUTH_ENABLED", "false")
    monkeypatch.setenv("OBSERVE_MAX_BODY_MB", "1.5")
    monkeypatch.setenv("OBSERVE_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("OBSERVE_BOOTSTRAP_ADMIN_KEY", GOOD_KEY)
    monkeypatch.setenv("PORT", "1234")  # unprefixed: ignored
    monkeypatch.setenv("OBSERVE_NO_SUCH_SETTING", "1")  # unknown: ignored

    settings = Settings()

    assert settings.database_url == "postgresql+psycopg://h/db"
    assert settings.port == 9001
    assert settings.auth_enabled is False
    assert settings.max_body_mb == 1.5
    assert settings.log_level == "debug"
    assert settings.bootstrap_admin_key is not None
    assert settings.bootstrap_admin_key.get_secret_value() == GOOD_KEY
    assert GOOD_KEY not in repr(settings)


def test_environment_variable_with_a_bad_value_is_refused(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OBSERVE_PORT", "70000")

    with pytest.raises(ValidationError, match="port"):
        Settings()


def test_dot_env_file_in_the_working_directory(home: Path) -> None:
    (home / ".env").write_text(
        "# local settings\n"
        "OBSERVE_PORT=9002\n"
        "OBSERVE_ROLLUP_TAGS=host,gpu\n"
        "OBSERVE_DATA_DIR=/srv/observe\n"
        "UNRELATED=1\n",
        encoding="utf-8",
    )

    settings = Settings()

    assert settings.port == 9002
    assert settings.rollup_tags == ("host", "gpu")
    assert settings.data_dir == Path("/srv/observe")
    assert settings.database_url == "sqlite:////srv/observe/observe.db"


def test_environment_variables_win_over_the_dot_env_file(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (home / ".env").write_text("OBSERVE_PORT=9002\nOBSERVE_HOST=0.0.0.0\n", encoding="utf-8")
    monkeypatch.setenv("OBSERVE_PORT", "9003")

    settings = Settings()

    assert (settings.host, settings.port) == ("0.0.0.0", 9003)


def test_keyword_overrides_win_over_the_environment(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OBSERVE_PORT", "9003")

    assert Settings(port=9004).port == 9004


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("host,region", ("host", "region")),
        (" host , gpu ,, canary ,", ("host", "gpu", "canary")),
        ("segment", ("segment",)),
        ("", ()),
    ],
)
def test_rollup_tags_from_a_comma_separated_variable(
    value: str, expected: tuple[str, ...], home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OBSERVE_ROLLUP_TAGS", value)

    assert Settings().rollup_tags == expected


def test_rollup_tags_from_a_list() -> None:
    assert make_settings(rollup_tags=["host", "zone"]).rollup_tags == ("host", "zone")


# --- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key", ["changeme", "CHANGEME", "secret", "password", "admin", "test", "xxx", "short-key-15chr"]
)
def test_placeholder_or_short_bootstrap_admin_key_is_refused(key: str) -> None:
    assert refusal(bootstrap_admin_key=key) == (
        "bootstrap_admin_key: Value error, bootstrap_admin_key must be a random string of at "
        "least 16 characters"
    )


@pytest.mark.parametrize(
    "overrides",
    [
        {"bootstrap_admin_key": "hunter2"},
        {"database_url": "mysql://observe:hunter2@db/observe"},
        {"database_url": "observe:hunter2@db/observe"},
    ],
)
def test_refusals_do_not_echo_secrets(overrides: dict[str, str]) -> None:
    with pytest.raises(ValidationError) as raised:
        make_settings(**overrides)

    assert "hunter2" not in str(raised.value)


def test_a_long_random_bootstrap_admin_key_is_accepted() -> None:
    settings = make_settings(bootstrap_admin_key=GOOD_KEY)

    assert settings.bootstrap_admin_key is not None
    assert settings.bootstrap_admin_key.get_secret_value() == GOOD_KEY


@pytest.mark.parametrize(
    ("value", "expected"),
    [("debug", "debug"), ("INFO", "info"), ("Warning", "warning"), ("error", "error")],
)
def test_log_level(value: str, expected: str) -> None:
    assert make_settings(log_level=value).log_level == expected


@pytest.mark.parametrize("value", ["warn", "critical", "trace", "", "10"])
def test_unknown_log_level_is_refused(value: str) -> None:
    assert refusal(log_level=value) == (
        "log_level: Value error, log_level must be one of debug, info, warning, error"
    )


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"port": 0}, "port"),
        ({"port": 65_536}, "port"),
        ({"workers": -1}, "workers"),
        ({"workers": 65}, "workers"),
        ({"max_body_mb": 0}, "max_body_mb"),
        ({"max_batch_records": 0}, "max_batch_records"),
        ({"retention_days": 0}, "retention_days"),
        ({"db_pool_size": 0}, "db_pool_size"),
        ({"write_timeout_seconds": -1}, "write_timeout_seconds"),
    ],
)
def test_out_of_range_numbers_are_refused(overrides: dict[str, object], field: str) -> None:
    assert refusal(**overrides).startswith(f"{field}: ")


# --- binding --------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_auth_may_be_off_on_loopback(host: str) -> None:
    make_settings(auth_enabled=False, host=host).check_bind_is_safe()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "observe.internal"])
def test_auth_off_beyond_loopback_is_refused(host: str) -> None:
    settings = make_settings(auth_enabled=False, host=host)

    with pytest.raises(ValueError, match=f"would listen on {re.escape(host)}: enable auth"):
        settings.check_bind_is_safe()


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.5"])
def test_auth_on_may_bind_anywhere(host: str) -> None:
    make_settings(auth_enabled=True, host=host).check_bind_is_safe()


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, "http://127.0.0.1:8080"),
        ({"host": "0.0.0.0", "port": 9000}, "http://127.0.0.1:9000"),
        ({"host": "::"}, "http://127.0.0.1:8080"),
        ({"host": "::1"}, "http://[::1]:8080"),
        ({"host": "fd00::5", "port": 80}, "http://[fd00::5]:80"),
        ({"host": "observe.internal"}, "http://observe.internal:8080"),
        ({"public_url": "https://observe.example.com/"}, "https://observe.example.com"),
    ],
)
def test_base_url(overrides: dict[str, object], expected: str) -> None:
    assert make_settings(**overrides).base_url == expected


# --- derived counts -------------------------------------------------------------------------


@pytest.mark.parametrize(("cpus", "expected"), [(32, 8), (4, 4), (1, 1), (None, 1)])
def test_num_workers_default_follows_cpus_on_postgres(
    cpus: int | None, expected: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: cpus)

    assert make_settings(database_url=POSTGRES).num_workers == expected
    assert make_settings().num_workers == 1  # SQLite


def test_num_workers_explicit() -> None:
    assert make_settings(database_url=POSTGRES, workers=3).num_workers == 3
    assert make_settings(workers=2).num_workers == 2


@pytest.mark.parametrize(
    ("database_url", "writer_threads", "expected"),
    [
        ("", 0, 1),
        ("", 4, 1),  # SQLite has one writer whatever is asked
        (POSTGRES, 0, 2),
        (POSTGRES, 4, 4),
        (POSTGRES, 1, 1),
    ],
)
def test_num_writer_threads(database_url: str, writer_threads: int, expected: int) -> None:
    settings = make_settings(database_url=database_url, writer_threads=writer_threads)

    assert settings.num_writer_threads == expected


# --- documentation --------------------------------------------------------------------------


def test_every_setting_has_a_description() -> None:
    undocumented = [
        name for name, field in Settings.model_fields.items() if not (field.description or "")
    ]

    assert undocumented == []


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = README.read_text(encoding="utf-8")

    missing = [
        f"OBSERVE_{name.upper()}"
        for name in Settings.model_fields
        if not re.search(rf"\bOBSERVE_{name.upper()}\b", readme)
    ]

    assert missing == [], f"README.md does not document: {', '.join(missing)}"
