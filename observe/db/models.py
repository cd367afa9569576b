"""Tables. Alembic revisions in migrations/ create them; tests compare the two."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from observe.db.base import Base, BigInt, JSONType, UTCDateTime

NAME_LENGTH = 200

EVENT_KINDS = ("deploy", "rollback", "canary", "config", "scale", "incident", "other")


class InferenceRecord(Base):
    """One prediction as the serving system logged it (DESIGN 3.1). Labels live in `labels`."""

    __tablename__ = "inference_records"
    __table_args__ = (
        UniqueConstraint("model", "request_id"),
        Index("ix_inference_records_model_timestamp", "model", "timestamp"),
        # Partial: most records carry no trace id, and indexing NULLs costs every insert.
        Index(
            "ix_inference_records_trace_id",
            "trace_id",
            postgresql_where=text("trace_id IS NOT NULL"),
            sqlite_where=text("trace_id IS NOT NULL"),
        ),
        CheckConstraint("status IN ('ok', 'error')", name="status"),
        CheckConstraint("latency_ms >= 0", name="latency_ms"),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(NAME_LENGTH))
    model_version: Mapped[str] = mapped_column(String(NAME_LENGTH))
    request_id: Mapped[str] = mapped_column(String(NAME_LENGTH))
    timestamp: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    latency_ms: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(8))
    error: Mapped[str | None] = mapped_column(Text)
    features: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    prediction: Mapped[Any | None] = mapped_column(JSONType)
    tags: Mapped[dict[str, str] | None] = mapped_column(JSONType)
    input_size: Mapped[float | None] = mapped_column(Float)
    trace_id: Mapped[str | None] = mapped_column(String(32))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class Label(Base):
    """Ground truth for one prediction, inline with the record or arriving later."""

    __tablename__ = "labels"
    __table_args__ = (UniqueConstraint("model", "request_id"),)

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(NAME_LENGTH))
    request_id: Mapped[str] = mapped_column(String(NAME_LENGTH))
    label: Mapped[Any] = mapped_column(JSONType)
    timestamp: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class Event(Base):
    """A deploy, rollback, config change or other change to a model's serving."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_model_timestamp", "model", "timestamp"),
        CheckConstraint(f"kind IN {EVENT_KINDS!r}", name="kind"),
        CheckConstraint("traffic_pct >= 0 AND traffic_pct <= 100", name="traffic_pct"),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    timestamp: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    model: Mapped[str] = mapped_column(String(NAME_LENGTH))
    kind: Mapped[str] = mapped_column(String(16))
    model_version: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    traffic_pct: Mapped[float | None] = mapped_column(Float)
    description: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[dict[str, str] | None] = mapped_column(JSONType)
    dedupe_key: Mapped[str] = mapped_column(String(64), unique=True)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class MetricSample(Base):
    """A GPU, host or queue measurement; one series is (host, resource, name)."""

    __tablename__ = "metric_samples"
    __table_args__ = (
        UniqueConstraint("host", "resource", "name", "timestamp"),
        Index("ix_metric_samples_name_timestamp", "name", "timestamp"),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    timestamp: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    host: Mapped[str] = mapped_column(String(NAME_LENGTH))
    resource: Mapped[str] = mapped_column(String(NAME_LENGTH))
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    value: Mapped[float] = mapped_column(Float)
    tags: Mapped[dict[str, str] | None] = mapped_column(JSONType)


class Span(Base):
    """An OpenTelemetry span; `trace_id` links it to inference records."""

    __tablename__ = "spans"
    __table_args__ = (
        UniqueConstraint("trace_id", "span_id"),
        Index("ix_spans_service_name_start_at", "service_name", "start_at"),
        Index("ix_spans_model_start_at", "model", "start_at"),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    trace_id: Mapped[str] = mapped_column(String(32))
    span_id: Mapped[str] = mapped_column(String(16))
    parent_span_id: Mapped[str | None] = mapped_column(String(16))
    service_name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    name: Mapped[str] = mapped_column(String(500))
    kind: Mapped[str] = mapped_column(String(16))
    start_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    duration_ms: Mapped[float] = mapped_column(Float)
    status_code: Mapped[str] = mapped_column(String(8))
    status_message: Mapped[str | None] = mapped_column(Text)
    attributes: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    resource_attributes: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    model: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class Trace(Base):
    """One trace: the summary of its spans, kept up to date as they arrive.

    `model` is the model the trace belongs to: named by one of its spans, or by an inference
    record with its trace id (a record arriving before any span creates the row, with
    `num_spans` 0). The root is the span without a parent; until it arrives, `root_name` is
    the name of the earliest span and `root_span_id` is empty.
    """

    __tablename__ = "traces"
    __table_args__ = (
        Index("ix_traces_model_start_at", "model", "start_at"),
        Index("ix_traces_service_name_start_at", "service_name", "start_at"),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    trace_id: Mapped[str] = mapped_column(String(32), unique=True)
    model: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    service_name: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    root_name: Mapped[str | None] = mapped_column(String(500))
    root_span_id: Mapped[str | None] = mapped_column(String(16))
    start_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    duration_ms: Mapped[float] = mapped_column(Float)
    num_spans: Mapped[int] = mapped_column(BigInt)
    num_errors: Mapped[int] = mapped_column(BigInt)


class SpanRollup(Base):
    """Per-minute duration histogram of the spans of one name, by model or by service.

    `dim_key` is "model" or "service" and `dim_value` the model or service name; a span counts
    towards its service's row and, once its model is known, its model's row. `histogram` is
    a mergeable log-bucket histogram (analyzers.histograms), as in `latency_rollups`. `kind` is
    the span kind (client, server, ...) of the first span of the row, and `num_roots` counts
    the spans that were the root of their trace.
    """

    __tablename__ = "span_rollups"
    __table_args__ = (
        UniqueConstraint("dim_key", "dim_value", "name", "bucket_start"),
        Index(
            "ix_span_rollups_dim_key_dim_value_bucket_start", "dim_key", "dim_value", "bucket_start"
        ),
        CheckConstraint("dim_key IN ('model', 'service')", name="dim_key"),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    dim_key: Mapped[str] = mapped_column(String(8))
    dim_value: Mapped[str] = mapped_column(String(NAME_LENGTH))
    name: Mapped[str] = mapped_column(String(500))
    bucket_start: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(16))
    num_spans: Mapped[int] = mapped_column(BigInt)
    num_errors: Mapped[int] = mapped_column(BigInt)
    num_roots: Mapped[int] = mapped_column(BigInt)
    duration_sum_ms: Mapped[float] = mapped_column(Float)
    duration_min_ms: Mapped[float] = mapped_column(Float)
    duration_max_ms: Mapped[float] = mapped_column(Float)
    histogram: Mapped[bytes] = mapped_column(LargeBinary)


class ProfilerTrace(Base):
    """A PyTorch profiler (Kineto) chrome-trace file; its bytes live in `profile_chunks`."""

    __tablename__ = "profiler_traces"
    __table_args__ = (
        Index("ix_profiler_traces_model_captured_at", "model", "captured_at"),
        Index(
            "ix_profiler_traces_model_model_version_captured_at",
            "model",
            "model_version",
            "captured_at",
        ),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(NAME_LENGTH))
    model_version: Mapped[str] = mapped_column(String(NAME_LENGTH))
    host: Mapped[str] = mapped_column(String(NAME_LENGTH))
    captured_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    file_name: Mapped[str | None] = mapped_column(String(500))
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    num_bytes: Mapped[int] = mapped_column(BigInt)
    num_events: Mapped[int] = mapped_column(BigInt)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSONType)


class ProfileChunk(Base):
    """A slice of a profiler trace file as one gzip member, in file order: the chunks of a
    profile, concatenated, are the whole file gzipped."""

    __tablename__ = "profile_chunks"

    profile_id: Mapped[int] = mapped_column(
        ForeignKey("profiler_traces.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class ProfileOperator(Base):
    """Per-operator summary of one profiler trace; `op_index` is what timeline rows refer to."""

    __tablename__ = "profile_operators"
    __table_args__ = (UniqueConstraint("profile_id", "op_index"),)

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    profile_id: Mapped[int] = mapped_column(ForeignKey("profiler_traces.id", ondelete="CASCADE"))
    op_index: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(1000))
    category: Mapped[str] = mapped_column(String(64))
    count: Mapped[int] = mapped_column(BigInt)
    total_us: Mapped[float] = mapped_column(Float)
    self_us: Mapped[float] = mapped_column(Float)
    input_shapes: Mapped[list[Any] | None] = mapped_column(JSONType)


class ProfileStep(Base):
    """One profiler step (``ProfilerStep#N``) of a trace: its span and self time per category."""

    __tablename__ = "profile_steps"

    profile_id: Mapped[int] = mapped_column(
        ForeignKey("profiler_traces.id", ondelete="CASCADE"), primary_key=True
    )
    step: Mapped[int] = mapped_column(BigInt, primary_key=True)
    start_us: Mapped[float] = mapped_column(Float)
    duration_us: Mapped[float] = mapped_column(Float)
    num_events: Mapped[int] = mapped_column(BigInt)
    self_us_by_category: Mapped[dict[str, float]] = mapped_column(JSONType)


class ProfileTimelineChunk(Base):
    """Complete events of one thread of a trace, in start order, as compressed columns.

    `start_us` is the first event's start and `end_us` the latest end in the chunk, so a time
    range reads only the chunks that overlap it.
    """

    __tablename__ = "profile_timeline_chunks"

    profile_id: Mapped[int] = mapped_column(
        ForeignKey("profiler_traces.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    thread: Mapped[int] = mapped_column(Integer)
    start_us: Mapped[float] = mapped_column(Float)
    end_us: Mapped[float] = mapped_column(Float)
    num_events: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class ReferenceDataset(Base):
    """Training (reference) features of a model version, for skew and drift."""

    __tablename__ = "reference_datasets"
    __table_args__ = (UniqueConstraint("model", "model_version", "name"),)

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(NAME_LENGTH))
    model_version: Mapped[str] = mapped_column(String(NAME_LENGTH))
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    source: Mapped[str | None] = mapped_column(String(1000))
    num_rows: Mapped[int] = mapped_column(BigInt)
    num_rows_stored: Mapped[int] = mapped_column(BigInt)
    feature_types: Mapped[dict[str, str]] = mapped_column(JSONType)
    profile: Mapped[bytes | None] = mapped_column(LargeBinary)


class ReferenceRow(Base):
    """One stored row of a reference dataset (up to the configured cap)."""

    __tablename__ = "reference_rows"

    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("reference_datasets.id", ondelete="CASCADE"), primary_key=True
    )
    row_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    features: Mapped[dict[str, Any]] = mapped_column(JSONType)


class ApiKey(Base):
    """An API key: only its SHA-256 digest and a short display prefix are stored."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class Finding(Base):
    """A stored analysis result: drift, skew, latency regression and the like.

    `dedupe_key` identifies the incident: re-analysing updates the row (`updated_at`).
    """

    __tablename__ = "findings"
    __table_args__ = (
        Index("ix_findings_model_created_at", "model", "created_at"),
        Index("ix_findings_updated_at", "updated_at"),
        CheckConstraint("status IN ('open', 'resolved', 'ok')", name="status"),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(NAME_LENGTH))
    model_version: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    window_start: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    window_end: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))
    severity: Mapped[float | None] = mapped_column(Float)
    summary: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    dedupe_key: Mapped[str] = mapped_column(String(128), unique=True)


class Model(Base):
    """A model and its service-level objectives."""

    __tablename__ = "models"
    __table_args__ = (
        CheckConstraint(
            "slo_latency_percentile > 0 AND slo_latency_percentile < 100", name="slo_percentile"
        ),
        CheckConstraint("slo_latency_ms > 0", name="slo_latency_ms"),
        CheckConstraint(
            "slo_error_rate_pct >= 0 AND slo_error_rate_pct <= 100", name="slo_error_rate_pct"
        ),
    )

    name: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    slo_latency_percentile: Mapped[float | None] = mapped_column(Float)
    slo_latency_ms: Mapped[float | None] = mapped_column(Float)
    slo_error_rate_pct: Mapped[float | None] = mapped_column(Float)
    slo_updated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class ModelVersion(Base):
    """A version of a model seen in ingested records."""

    __tablename__ = "model_versions"

    model: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    model_version: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    first_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class LatencyRollup(Base):
    """Per-minute latency histogram of a model version, overall or for one tag value.

    `dim_key` is empty for the whole version, else a tag key from the `rollup_tags` setting with
    `dim_value` its value. `histogram` is a mergeable log-bucket histogram
    (analyzers.histograms), so any window's percentiles come from merged buckets.
    """

    __tablename__ = "latency_rollups"
    __table_args__ = (
        UniqueConstraint("model", "model_version", "dim_key", "dim_value", "bucket_start"),
        Index("ix_latency_rollups_model_dim_key_bucket_start", "model", "dim_key", "bucket_start"),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(NAME_LENGTH))
    model_version: Mapped[str] = mapped_column(String(NAME_LENGTH))
    dim_key: Mapped[str] = mapped_column(String(100))
    dim_value: Mapped[str] = mapped_column(String(NAME_LENGTH))
    bucket_start: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    num_requests: Mapped[int] = mapped_column(BigInt)
    num_errors: Mapped[int] = mapped_column(BigInt)
    latency_sum_ms: Mapped[float] = mapped_column(Float)
    latency_min_ms: Mapped[float] = mapped_column(Float)
    latency_max_ms: Mapped[float] = mapped_column(Float)
    num_with_input_size: Mapped[int] = mapped_column(BigInt)
    input_size_sum: Mapped[float] = mapped_column(Float)
    histogram: Mapped[bytes] = mapped_column(LargeBinary)


class JobClaim(Base):
    """One run of a periodic job for one time slot, claimed by the process that does it.

    With several server processes (or servers) on one database, each inserts the claim for the
    slot it is about to run; the unique (job, slot_start) lets exactly one of them win.
    """

    __tablename__ = "job_claims"
    __table_args__ = (UniqueConstraint("job", "slot_start"),)

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(String(100))
    slot_start: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    claimed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str] = mapped_column(String(NAME_LENGTH))
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class KServePair(Base):
    """The two payload-logger events (request, response) of one KServe or Seldon inference
    while they are joined: the half that arrives first waits here for its partner, which may
    arrive at another server process. Once joined, the row stays (payloads cleared) so that a
    repeated event is recognised, until the expiry job removes it.

    `pair_key` is the SHA-256 of the events' CloudEvents source and id.
    """

    __tablename__ = "kserve_pairs"
    __table_args__ = (Index("ix_kserve_pairs_received_at", "received_at"),)

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    pair_key: Mapped[str] = mapped_column(String(64), unique=True)
    event_id: Mapped[str] = mapped_column(String(NAME_LENGTH))
    request: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    joined_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class FeatureProfileRollup(Base):
    """Hourly profile of one feature of a model version (analyzers.feature_profiles.FeatureProfile).

    Profiles merge: the profiling job folds newly stored records into their hour's row, and any
    window's profile is the merge of its hours' rows.
    """

    __tablename__ = "feature_profiles"
    __table_args__ = (
        UniqueConstraint("model", "model_version", "hour_start", "feature"),
        Index("ix_feature_profiles_model_hour_start", "model", "hour_start"),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(NAME_LENGTH))
    model_version: Mapped[str] = mapped_column(String(NAME_LENGTH))
    hour_start: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    feature: Mapped[str] = mapped_column(String(NAME_LENGTH))
    num_rows: Mapped[int] = mapped_column(BigInt)
    profile: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class FeatureProfileDayRollup(Base):
    """Daily profile of one feature of a model version: the merge of its hours' profiles,
    kept up to date by the profiling job, so that long windows merge days, not hours."""

    __tablename__ = "feature_profile_days"
    __table_args__ = (
        UniqueConstraint("model", "model_version", "day_start", "feature"),
        Index("ix_feature_profile_days_model_day_start", "model", "day_start"),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(NAME_LENGTH))
    model_version: Mapped[str] = mapped_column(String(NAME_LENGTH))
    day_start: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    feature: Mapped[str] = mapped_column(String(NAME_LENGTH))
    num_rows: Mapped[int] = mapped_column(BigInt)
    profile: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class ProfilingWatermark(Base):
    """How far the profiling job has folded a raw table into profiles (by row id)."""

    __tablename__ = "profiling_watermarks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_id: Mapped[int] = mapped_column(BigInt)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


REPORT_KINDS = ("model", "summary")
DELIVERY_CHANNELS = ("directory", "webhook", "email")
DELIVERY_STATUSES = ("pending", "sent", "failed")
ALERT_STATES = ("opened", "resolved")


class Report(Base):
    """A weekly report: one per (ISO week, model), and one summary across models per week.

    `content` is the report's JSON (observe.schemas.reports); the HTML is rendered from it.
    The unique (week, kind, model) makes "one report per week" hold across servers.
    """

    __tablename__ = "reports"
    __table_args__ = (
        UniqueConstraint("week", "kind", "model"),
        Index("ix_reports_week_start", "week_start"),
        CheckConstraint("kind IN ('model', 'summary')", name="kind"),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    week: Mapped[str] = mapped_column(String(8))
    week_start: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(16))
    #: The model's name; empty for the summary.
    model: Mapped[str] = mapped_column(String(NAME_LENGTH))
    content: Mapped[dict[str, Any]] = mapped_column(JSONType)
    #: The length of the content's "needs attention" list, for lists of reports.
    num_needs_attention: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(NAME_LENGTH))


class Alert(Base):
    """An alert sent (or due) about an incident: `opened` when a latency regression, SLO breach
    or data set drift became open, `resolved` when it cleared.

    `incident_key` is the dedupe key of the finding that opened the incident; `subject`
    identifies what the incident is about (the regression, the SLO objective, the model
    version drifting), so a drift that lasts several days stays one incident. The unique
    (incident_key, state) makes each notice go out once, whatever the number of servers.
    """

    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("incident_key", "state"),
        Index("ix_alerts_subject", "subject"),
        Index("ix_alerts_created_at", "created_at"),
        CheckConstraint("state IN ('opened', 'resolved')", name="state"),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    incident_key: Mapped[str] = mapped_column(String(128))
    subject: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(NAME_LENGTH))
    model_version: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    finding_id: Mapped[int | None] = mapped_column(BigInt)
    summary: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class Delivery(Base):
    """Sending one week's reports, or one alert, through one channel (directory, webhook,
    email): attempts, the last error and when to try again.

    A failed attempt stays `pending` with a later `next_attempt_at` (the delivery job retries
    it, after a restart too) until `delivery_max_attempts`, then it is `failed`.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("week", "channel"),
        UniqueConstraint("alert_id", "channel"),
        Index("ix_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        CheckConstraint("(week IS NULL) <> (alert_id IS NULL)", name="subject"),
        CheckConstraint("status IN ('pending', 'sent', 'failed')", name="status"),
        CheckConstraint("channel IN ('directory', 'webhook', 'email')", name="channel"),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    week: Mapped[str | None] = mapped_column(String(8))
    alert_id: Mapped[int | None] = mapped_column(
        BigInt, ForeignKey("alerts.id", ondelete="CASCADE")
    )
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
