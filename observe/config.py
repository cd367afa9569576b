"""Settings, read from ``OBSERVE_*`` environment variables and an optional ``.env`` file.

Every field carries a description; the README lists them all and a test keeps the two in step.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_ROLLUP_TAGS = ("host", "region", "zone", "segment", "canary")
DEFAULT_SPAN_MODEL_ATTRIBUTES = ("model.name", "model", "gen_ai.request.model")
PLACEHOLDER_SECRETS = {"changeme", "change-me", "secret", "password", "admin", "test", "xxx"}
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
SMTP_SECURITY = ("starttls", "ssl", "none")
#: Enough to catch a typo (a missing @ or domain); the SMTP server is the judge of the rest.
EMAIL_ADDRESS = re.compile(r"^[^@\s,<>]+@[^@\s,<>]+\.[^@\s,<>]+$")


class Settings(BaseSettings):
    """observe's configuration. Construct with keyword overrides in tests."""

    # Inputs are left out of validation errors: they may be keys or URLs with passwords.
    model_config = SettingsConfigDict(
        env_prefix="OBSERVE_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        hide_input_in_errors=True,
    )

    data_dir: Path = Field(
        default=Path("~/.observe"),
        description="Directory for the embedded SQLite database and other local state.",
    )
    database_url: str = Field(
        default="",
        description=(
            "SQLAlchemy URL of the database. Empty means sqlite:///<data_dir>/observe.db. "
            "postgresql:// URLs use psycopg 3."
        ),
    )
    host: str = Field(default="127.0.0.1", description="Address `observe serve` binds to.")
    port: int = Field(default=8080, ge=1, le=65535, description="Port `observe serve` listens on.")
    workers: int = Field(
        default=0,
        ge=0,
        le=64,
        description=(
            "Server worker processes for `observe serve`; 0 picks 1 for SQLite and the number of "
            "CPUs (at most 8) for Postgres. Each worker parses and writes batches on its own "
            "core, which is what lets ingest use more than one."
        ),
    )
    public_url: str = Field(
        default="",
        description=(
            "URL users reach the server at, for printed links and the links in reports and "
            "alerts. Empty: from host and port."
        ),
    )
    auth_enabled: bool = Field(
        default=True,
        description=(
            "Require an API key on every endpoint except /healthz and the OpenAPI docs. "
            "Turning it off is refused when the server binds beyond loopback."
        ),
    )
    bootstrap_admin_key: SecretStr | None = Field(
        default=None,
        description=(
            "An admin key to install on start (for automated deployments). Without it, the "
            "first `observe serve` creates a random admin key and prints it once."
        ),
    )
    ui_enabled: bool = Field(default=True, description="Serve the web UI at /ui/ next to the API.")
    ui_secret_key: SecretStr | None = Field(
        default=None,
        description=(
            "Secret that signs UI session cookies (at least 32 characters). Without it, one is "
            "generated on first start and kept in <data_dir>/ui_secret_key; set it when several "
            "servers or hosts share logins."
        ),
    )
    ui_session_hours: float = Field(
        default=12.0,
        gt=0,
        le=24 * 90,
        description="How long a UI login lasts before the key must be entered again.",
    )
    migrate_on_start: bool = Field(
        default=True, description="Upgrade the database schema to the latest revision on start."
    )
    max_body_mb: float = Field(
        default=32.0,
        gt=0,
        description="Largest ingest request body in MiB, counted after decompression (413 above).",
    )
    max_profile_mb: float = Field(
        default=2048.0,
        gt=0,
        description=(
            "Largest profiler trace in MiB, counted after decompression (413 above), for "
            "uploads to /api/v1/profiles and `observe import profile`."
        ),
    )
    max_batch_records: int = Field(
        default=100_000, ge=1, description="Most records (or events, samples) in one request."
    )
    writer_queue_items: int = Field(
        default=200_000,
        ge=1,
        description="Items (records, samples, ...) waiting to be written before ingest gets 429.",
    )
    writer_threads: int = Field(
        default=0,
        ge=0,
        description="Database writer threads; 0 picks 1 for SQLite and 2 for Postgres.",
    )
    write_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How long a request waits for its batch to commit before answering 503.",
    )
    rollup_tags: Annotated[tuple[str, ...], NoDecode] = Field(
        default=DEFAULT_ROLLUP_TAGS,
        description=(
            "Comma-separated tag keys whose values get their own latency rollups, so "
            "per-tag latency series read rollups instead of raw records."
        ),
    )
    span_model_attributes: Annotated[tuple[str, ...], NoDecode] = Field(
        default=DEFAULT_SPAN_MODEL_ATTRIBUTES,
        description=(
            "Comma-separated span (or resource) attribute keys that name the model a span "
            "belongs to, tried in order; the first holding a string wins."
        ),
    )
    retention_days: float = Field(
        default=30.0,
        gt=0,
        description="Days raw rows (records, labels, metrics, spans, trace summaries) are kept.",
    )
    rollup_retention_days: float = Field(
        default=400.0,
        gt=0,
        description="Days latency and span-duration rollups and feature profiles are kept.",
    )
    retention_interval_seconds: float = Field(
        default=3600.0, gt=0, description="How often the retention job runs inside `observe serve`."
    )
    analysis_interval_seconds: float = Field(
        default=3600.0,
        ge=60,
        description=(
            "How often `observe serve` analyses every active model (latency regressions, SLO "
            "breaches) and stores the findings; each interval runs once across all server "
            "processes on the database."
        ),
    )
    kserve_pair_timeout_seconds: float = Field(
        default=300.0,
        gt=0,
        description=(
            "How long the request or response event of a KServe/Seldon payload-logger "
            "inference waits for its partner at POST /api/v1/kserve before it is dropped "
            "(and counted in /metrics)."
        ),
    )
    kserve_max_features: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description=(
            "Most values an instance (or a prediction) of a payload-logger event may have to "
            "be stored as features (or prediction); larger ones (images, embeddings) keep only "
            "their input_size."
        ),
    )
    reference_max_rows: int = Field(
        default=100_000,
        ge=1,
        description=(
            "Rows of a training reference data set stored for skew and reports (a seeded "
            "uniform sample when it has more); its profile always covers every row."
        ),
    )
    reference_max_mb: float = Field(
        default=256.0, gt=0, description="Largest reference data set upload in MiB (413 above)."
    )
    drift_share: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Share of drifted features at which a data set counts as drifted.",
    )
    drift_raw_max_hours: float = Field(
        default=24.0,
        ge=0,
        description=(
            "Drift windows up to this many hours are computed from raw records (exact); "
            "longer ones from the hourly feature profiles."
        ),
    )
    drift_raw_max_rows: int = Field(
        default=200_000,
        ge=1,
        description=(
            "Most raw records a drift or skew window reads; a drift window with more is "
            "computed from the hourly feature profiles, a skew window uses the newest rows."
        ),
    )
    profiling_interval_seconds: float = Field(
        default=300.0,
        gt=0,
        description=(
            "How often `observe serve` folds newly stored records into the hourly feature "
            "profiles (also done before an analysis reads profiles)."
        ),
    )
    profiling_lag_seconds: float = Field(
        default=60.0,
        ge=0,
        description=(
            "Records are folded into profiles only once received this long ago, so that no "
            "batch still being committed is passed over."
        ),
    )
    report_cron: str = Field(
        default="0 6 * * 1",
        description=(
            "When `observe serve` writes the weekly reports, as a cron expression in UTC; each "
            "time it fires, the last complete ISO week (Monday to Monday) is due. Empty: no "
            "scheduled reports."
        ),
    )
    report_catch_up_weeks: int = Field(
        default=4,
        ge=1,
        le=52,
        description=(
            "After downtime, the scheduler writes the reports of this many most recent due "
            "weeks that are missing (weeks before the first record are skipped)."
        ),
    )
    report_dir: str = Field(
        default="",
        description=(
            "Directory the reports and alerts are delivered to (<week>/<model>.html and .json, "
            "summary.html and .json; alerts/). Empty: <data_dir>/reports; `off`: no directory "
            "delivery."
        ),
    )
    webhook_url: SecretStr | None = Field(
        default=None,
        description=(
            "Incoming-webhook URL (Slack-compatible JSON) that reports and alerts are posted "
            "to. Kept secret: such URLs carry their own credential."
        ),
    )
    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, le=300, description="How long a webhook post may take."
    )
    smtp_host: str = Field(
        default="", description="SMTP server for report and alert email. Empty: no email."
    )
    smtp_port: int = Field(
        default=587, ge=1, le=65535, description="SMTP port (587 for STARTTLS, 465 for SSL)."
    )
    smtp_security: str = Field(
        default="starttls",
        description="starttls (upgrade the connection), ssl (TLS from the start) or none.",
    )
    smtp_user: str = Field(default="", description="SMTP login user; empty: no login.")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP login password.")
    smtp_from: str = Field(
        default="",
        description="Sender of report and alert email: an address, or Name <address>.",
    )
    smtp_to: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), description="Comma-separated recipients of report and alert email."
    )
    smtp_timeout_seconds: float = Field(
        default=30.0, gt=0, le=600, description="How long an SMTP conversation may take."
    )
    delivery_max_attempts: int = Field(
        default=8,
        ge=1,
        le=100,
        description=(
            "Attempts at one delivery (a report week or an alert to one channel) before it is "
            "marked failed; retries back off from 1 minute, doubling, up to 1 hour."
        ),
    )
    alerts_enabled: bool = Field(
        default=True,
        description=(
            "After each hourly analysis, send one alert per new latency regression, SLO breach "
            "or data set drift, and a notice when it is resolved, through the report channels."
        ),
    )
    sqlite_busy_timeout_ms: int = Field(
        default=30_000,
        ge=0,
        description="How long SQLite waits for a lock held by another process.",
    )
    db_pool_size: int = Field(default=8, ge=1, description="Postgres connection pool size.")
    log_level: str = Field(default="info", description="Log level: debug, info, warning, error.")

    @field_validator("data_dir")
    @classmethod
    def _expand_data_dir(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("database_url")
    @classmethod
    def _normalise_database_url(cls, value: str) -> str:
        return normalise_database_url(value)

    @field_validator("rollup_tags", "span_model_attributes", mode="before")
    @classmethod
    def _split_rollup_tags(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("smtp_to", mode="before")
    @classmethod
    def _split_recipients(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("smtp_to")
    @classmethod
    def _check_recipients(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for address in value:
            if not EMAIL_ADDRESS.match(address):
                raise ValueError(f"{address!r} is not an email address")
        return value

    @field_validator("smtp_from")
    @classmethod
    def _check_sender(cls, value: str) -> str:
        from email.utils import parseaddr

        value = value.strip()
        if value and not EMAIL_ADDRESS.match(parseaddr(value)[1]):
            raise ValueError(f"{value!r} is not an email address (or Name <address>)")
        return value

    @field_validator("smtp_security")
    @classmethod
    def _check_smtp_security(cls, value: str) -> str:
        security = value.strip().lower()
        if security not in SMTP_SECURITY:
            raise ValueError("smtp_security must be one of starttls, ssl, none")
        return security

    @field_validator("report_cron")
    @classmethod
    def _check_report_cron(cls, value: str) -> str:
        from croniter import croniter

        value = " ".join(value.split())
        if value and (len(value.split()) != 5 or not croniter.is_valid(value)):
            raise ValueError(
                f"{value!r} is not a cron expression of five fields such as '0 6 * * 1'"
            )
        return value

    @field_validator("webhook_url", mode="before")
    @classmethod
    def _empty_webhook_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("webhook_url")
    @classmethod
    def _check_webhook_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("http://", "https://")):
            raise ValueError("webhook_url must be an http:// or https:// URL")
        return value

    @field_validator("bootstrap_admin_key")
    @classmethod
    def _refuse_placeholder_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        secret = value.get_secret_value()
        if secret.lower() in PLACEHOLDER_SECRETS or len(secret) < 16:
            raise ValueError(
                "bootstrap_admin_key must be a random string of at least 16 characters"
            )
        return value

    @field_validator("ui_secret_key", mode="before")
    @classmethod
    def _empty_ui_secret_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("ui_secret_key")
    @classmethod
    def _refuse_weak_ui_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        secret = value.get_secret_value()
        if secret.lower() in PLACEHOLDER_SECRETS or len(secret) < 32:
            raise ValueError("ui_secret_key must be a random string of at least 32 characters")
        return value

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.lower()
        if level not in {"debug", "info", "warning", "error"}:
            raise ValueError("log_level must be one of debug, info, warning, error")
        return level

    @model_validator(mode="after")
    def _default_database_url(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'observe.db'}"
        return self

    @model_validator(mode="after")
    def _check_email_settings(self) -> Settings:
        if self.smtp_host and not (self.smtp_from and self.smtp_to):
            raise ValueError("smtp_host is set: set smtp_from and smtp_to too")
        return self

    def check_bind_is_safe(self) -> None:
        """Refuse to serve without authentication on anything but loopback."""
        if not self.auth_enabled and self.host not in LOOPBACK_HOSTS:
            raise ValueError(
                f"auth is disabled (OBSERVE_AUTH_ENABLED=false) and the server would listen on "
                f"{self.host}: enable auth, or bind to 127.0.0.1"
            )

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)

    @property
    def max_profile_bytes(self) -> int:
        return int(self.max_profile_mb * 1024 * 1024)

    @property
    def report_directory(self) -> Path | None:
        """Where reports and alerts are written; None when directory delivery is off."""
        if self.report_dir.strip().lower() == "off":
            return None
        if self.report_dir.strip():
            return Path(self.report_dir.strip()).expanduser()
        return self.data_dir / "reports"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def num_writer_threads(self) -> int:
        if self.writer_threads:
            return 1 if self.is_sqlite else self.writer_threads
        return 1 if self.is_sqlite else 2

    @property
    def num_workers(self) -> int:
        if self.workers:
            return self.workers
        return 1 if self.is_sqlite else min(os.cpu_count() or 1, 8)

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in {"0.0.0.0", "::"} else self.host
        if ":" in host and not host.startswith("["):  # an IPv6 address needs brackets
            host = f"[{host}]"
        return f"http://{host}:{self.port}"


def normalise_database_url(url: str) -> str:
    """Route Postgres URLs to psycopg 3 and refuse URLs observe cannot use.

    Args:
        url: a SQLAlchemy or libpq-style URL; empty keeps the default.

    Returns:
        The URL with ``postgres://`` and ``postgresql://`` rewritten to ``postgresql+psycopg://``.
    """
    url = url.strip()
    if not url:
        return url
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    if url.startswith(("postgresql+psycopg://", "sqlite://")):
        return url
    if "://" not in url:  # not echoed: without a scheme the text may well hold a password
        raise ValueError("the database URL has no scheme: use sqlite:// or postgresql://")
    scheme = url.split("://", 1)[0]
    raise ValueError(f"unsupported database URL scheme {scheme!r}: use sqlite:// or postgresql://")
