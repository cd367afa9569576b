"""Initial schema: raw tables, rollups, API keys, models and findings.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The portable types of observe.db.base, spelled out so this revision never changes with them.
UTC_DATETIME = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIG_INT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("last_used_at", UTC_DATETIME, nullable=True),
        sa.Column("revoked_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_table(
        "events",
        sa.Column("id", BIG_INT, autoincrement=True, nullable=False),
        sa.Column("timestamp", UTC_DATETIME, nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("model_version", sa.String(length=200), nullable=True),
        sa.Column("traffic_pct", sa.Float(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("tags", JSON, nullable=True),
        sa.Column("dedupe_key", sa.String(length=64), nullable=False),
        sa.Column("received_at", UTC_DATETIME, nullable=False),
        sa.CheckConstraint(
            "kind IN ('deploy', 'rollback', 'canary', 'config', 'scale', 'incident', 'other')",
            name=op.f("ck_events_kind"),
        ),
        sa.CheckConstraint(
            "traffic_pct >= 0 AND traffic_pct <= 100", name=op.f("ck_events_traffic_pct")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_events_dedupe_key")),
    )
    op.create_index("ix_events_model_timestamp", "events", ["model", "timestamp"])
    op.create_table(
        "findings",
        sa.Column("id", BIG_INT, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("model_version", sa.String(length=200), nullable=True),
        sa.Column("window_start", UTC_DATETIME, nullable=False),
        sa.Column("window_end", UTC_DATETIME, nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("severity", sa.Float(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("details", JSON, nullable=True),
        sa.Column("dedupe_key", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_findings")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_findings_dedupe_key")),
    )
    op.create_index("ix_findings_model_created_at", "findings", ["model", "created_at"])
    op.create_table(
        "inference_records",
        sa.Column("id", BIG_INT, autoincrement=True, nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("model_version", sa.String(length=200), nullable=False),
        sa.Column("request_id", sa.String(length=200), nullable=False),
        sa.Column("timestamp", UTC_DATETIME, nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("features", JSON, nullable=True),
        sa.Column("prediction", JSON, nullable=True),
        sa.Column("tags", JSON, nullable=True),
        sa.Column("input_size", sa.Float(), nullable=True),
        sa.Column("trace_id", sa.String(length=32), nullable=True),
        sa.Column("received_at", UTC_DATETIME, nullable=False),
        sa.CheckConstraint("status IN ('ok', 'error')", name=op.f("ck_inference_records_status")),
        sa.CheckConstraint("latency_ms >= 0", name=op.f("ck_inference_records_latency_ms")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inference_records")),
        sa.UniqueConstraint(
            "model", "request_id", name=op.f("uq_inference_records_model_request_id")
        ),
    )
    op.create_index(
        "ix_inference_records_model_timestamp", "inference_records", ["model", "timestamp"]
    )
    op.create_index(
        "ix_inference_records_trace_id",
        "inference_records",
        ["trace_id"],
        postgresql_where=sa.text("trace_id IS NOT NULL"),
        sqlite_where=sa.text("trace_id IS NOT NULL"),
    )
    op.create_table(
        "labels",
        sa.Column("id", BIG_INT, autoincrement=True, nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("request_id", sa.String(length=200), nullable=False),
        sa.Column("label", JSON, nullable=False),
        sa.Column("timestamp", UTC_DATETIME, nullable=False),
        sa.Column("received_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_labels")),
        sa.UniqueConstraint("model", "request_id", name=op.f("uq_labels_model_request_id")),
    )
    op.create_table(
        "latency_rollups",
        sa.Column("id", BIG_INT, autoincrement=True, nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("model_version", sa.String(length=200), nullable=False),
        sa.Column("dim_key", sa.String(length=100), nullable=False),
        sa.Column("dim_value", sa.String(length=200), nullable=False),
        sa.Column("bucket_start", UTC_DATETIME, nullable=False),
        sa.Column("num_requests", BIG_INT, nullable=False),
        sa.Column("num_errors", BIG_INT, nullable=False),
        sa.Column("latency_sum_ms", sa.Float(), nullable=False),
        sa.Column("latency_min_ms", sa.Float(), nullable=False),
        sa.Column("latency_max_ms", sa.Float(), nullable=False),
        sa.Column("num_with_input_size", BIG_INT, nullable=False),
        sa.Column("input_size_sum", sa.Float(), nullable=False),
        sa.Column("histogram", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_latency_rollups")),
        sa.UniqueConstraint(
            "model",
            "model_version",
            "dim_key",
            "dim_value",
            "bucket_start",
            name=op.f("uq_latency_rollups_model_model_version_dim_key_dim_value_bucket_start"),
        ),
    )
    op.create_index(
        "ix_latency_rollups_model_dim_key_bucket_start",
        "latency_rollups",
        ["model", "dim_key", "bucket_start"],
    )
    op.create_table(
        "metric_samples",
        sa.Column("id", BIG_INT, autoincrement=True, nullable=False),
        sa.Column("timestamp", UTC_DATETIME, nullable=False),
        sa.Column("host", sa.String(length=200), nullable=False),
        sa.Column("resource", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("tags", JSON, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metric_samples")),
        sa.UniqueConstraint(
            "host",
            "resource",
            "name",
            "timestamp",
            name=op.f("uq_metric_samples_host_resource_name_timestamp"),
        ),
    )
    op.create_index("ix_metric_samples_name_timestamp", "metric_samples", ["name", "timestamp"])
    op.create_table(
        "model_versions",
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("model_version", sa.String(length=200), nullable=False),
        sa.Column("first_seen_at", UTC_DATETIME, nullable=False),
        sa.Column("last_seen_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("model", "model_version", name=op.f("pk_model_versions")),
    )
    op.create_table(
        "models",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("slo_latency_percentile", sa.Float(), nullable=True),
        sa.Column("slo_latency_ms", sa.Float(), nullable=True),
        sa.Column("slo_error_rate_pct", sa.Float(), nullable=True),
        sa.Column("slo_updated_at", UTC_DATETIME, nullable=True),
        sa.CheckConstraint(
            "slo_error_rate_pct >= 0 AND slo_error_rate_pct <= 100",
            name=op.f("ck_models_slo_error_rate_pct"),
        ),
        sa.CheckConstraint("slo_latency_ms > 0", name=op.f("ck_models_slo_latency_ms")),
        sa.CheckConstraint(
            "slo_latency_percentile > 0 AND slo_latency_percentile < 100",
            name=op.f("ck_models_slo_percentile"),
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_models")),
    )
    op.create_table(
        "profiler_traces",
        sa.Column("id", BIG_INT, autoincrement=True, nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("model_version", sa.String(length=200), nullable=False),
        sa.Column("host", sa.String(length=200), nullable=False),
        sa.Column("captured_at", UTC_DATETIME, nullable=False),
        sa.Column("received_at", UTC_DATETIME, nullable=False),
        sa.Column("file_name", sa.String(length=500), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("num_bytes", BIG_INT, nullable=False),
        sa.Column("num_events", BIG_INT, nullable=False),
        sa.Column("summary", JSON, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_profiler_traces")),
        sa.UniqueConstraint("sha256", name=op.f("uq_profiler_traces_sha256")),
    )
    op.create_index(
        "ix_profiler_traces_model_captured_at", "profiler_traces", ["model", "captured_at"]
    )
    op.create_table(
        "reference_datasets",
        sa.Column("id", BIG_INT, autoincrement=True, nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("model_version", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("source", sa.String(length=1000), nullable=True),
        sa.Column("num_rows", BIG_INT, nullable=False),
        sa.Column("num_rows_stored", BIG_INT, nullable=False),
        sa.Column("feature_types", JSON, nullable=False),
        sa.Column("profile", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reference_datasets")),
        sa.UniqueConstraint(
            "model",
            "model_version",
            "name",
            name=op.f("uq_reference_datasets_model_model_version_name"),
        ),
    )
    op.create_table(
        "spans",
        sa.Column("id", BIG_INT, autoincrement=True, nullable=False),
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.Column("span_id", sa.String(length=16), nullable=False),
        sa.Column("parent_span_id", sa.String(length=16), nullable=True),
        sa.Column("service_name", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("start_at", UTC_DATETIME, nullable=False),
        sa.Column("end_at", UTC_DATETIME, nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("status_code", sa.String(length=8), nullable=False),
        sa.Column("status_message", sa.Text(), nullable=True),
        sa.Column("attributes", JSON, nullable=True),
        sa.Column("resource_attributes", JSON, nullable=True),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("received_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_spans")),
        sa.UniqueConstraint("trace_id", "span_id", name=op.f("uq_spans_trace_id_span_id")),
    )
    op.create_index("ix_spans_model_start_at", "spans", ["model", "start_at"])
    op.create_index("ix_spans_service_name_start_at", "spans", ["service_name", "start_at"])
    op.create_table(
        "profile_chunks",
        sa.Column("profile_id", BIG_INT, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["profiler_traces.id"],
            name=op.f("fk_profile_chunks_profile_id_profiler_traces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("profile_id", "seq", name=op.f("pk_profile_chunks")),
    )
    op.create_table(
        "profile_operators",
        sa.Column("id", BIG_INT, autoincrement=True, nullable=False),
        sa.Column("profile_id", BIG_INT, nullable=False),
        sa.Column("name", sa.String(length=1000), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("count", BIG_INT, nullable=False),
        sa.Column("total_us", sa.Float(), nullable=False),
        sa.Column("self_us", sa.Float(), nullable=False),
        sa.Column("input_shapes", JSON, nullable=True),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["profiler_traces.id"],
            name=op.f("fk_profile_operators_profile_id_profiler_traces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_profile_operators")),
    )
    op.create_index("ix_profile_operators_profile_id", "profile_operators", ["profile_id"])
    op.create_table(
        "reference_rows",
        sa.Column("dataset_id", BIG_INT, nullable=False),
        sa.Column("row_index", sa.Integer(), nullable=False),
        sa.Column("features", JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["reference_datasets.id"],
            name=op.f("fk_reference_rows_dataset_id_reference_datasets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("dataset_id", "row_index", name=op.f("pk_reference_rows")),
    )


def downgrade() -> None:
    op.drop_table("reference_rows")
    op.drop_index("ix_profile_operators_profile_id", table_name="profile_operators")
    op.drop_table("profile_operators")
    op.drop_table("profile_chunks")
    op.drop_index("ix_spans_service_name_start_at", table_name="spans")
    op.drop_index("ix_spans_model_start_at", table_name="spans")
    op.drop_table("spans")
    op.drop_table("reference_datasets")
    op.drop_index("ix_profiler_traces_model_captured_at", table_name="profiler_traces")
    op.drop_table("profiler_traces")
    op.drop_table("models")
    op.drop_table("model_versions")
    op.drop_index("ix_metric_samples_name_timestamp", table_name="metric_samples")
    op.drop_table("metric_samples")
    op.drop_index("ix_latency_rollups_model_dim_key_bucket_start", table_name="latency_rollups")
    op.drop_table("latency_rollups")
    op.drop_table("labels")
    op.drop_index("ix_inference_records_trace_id", table_name="inference_records")
    op.drop_index("ix_inference_records_model_timestamp", table_name="inference_records")
    op.drop_table("inference_records")
    op.drop_index("ix_findings_model_created_at", table_name="findings")
    op.drop_table("findings")
    op.drop_index("ix_events_model_timestamp", table_name="events")
    op.drop_table("events")
    op.drop_table("api_keys")
