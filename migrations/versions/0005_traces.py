"""Traces: a summary row per trace, and per-minute span-duration rollups.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The portable types of observe.db.base, spelled out so this revision never changes with them.
UTC_DATETIME = sa.DateTime(timezone=True)
BIG_INT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "traces",
        sa.Column("id", BIG_INT, autoincrement=True, nullable=False),
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("service_name", sa.String(length=200), nullable=True),
        sa.Column("root_name", sa.String(length=500), nullable=True),
        sa.Column("root_span_id", sa.String(length=16), nullable=True),
        sa.Column("start_at", UTC_DATETIME, nullable=False),
        sa.Column("end_at", UTC_DATETIME, nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("num_spans", BIG_INT, nullable=False),
        sa.Column("num_errors", BIG_INT, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_traces")),
        sa.UniqueConstraint("trace_id", name=op.f("uq_traces_trace_id")),
    )
    op.create_index("ix_traces_model_start_at", "traces", ["model", "start_at"])
    op.create_index("ix_traces_service_name_start_at", "traces", ["service_name", "start_at"])
    op.create_table(
        "span_rollups",
        sa.Column("id", BIG_INT, autoincrement=True, nullable=False),
        sa.Column("dim_key", sa.String(length=8), nullable=False),
        sa.Column("dim_value", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("bucket_start", UTC_DATETIME, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("num_spans", BIG_INT, nullable=False),
        sa.Column("num_errors", BIG_INT, nullable=False),
        sa.Column("num_roots", BIG_INT, nullable=False),
        sa.Column("duration_sum_ms", sa.Float(), nullable=False),
        sa.Column("duration_min_ms", sa.Float(), nullable=False),
        sa.Column("duration_max_ms", sa.Float(), nullable=False),
        sa.Column("histogram", sa.LargeBinary(), nullable=False),
        sa.CheckConstraint("dim_key IN ('model', 'service')", name=op.f("ck_span_rollups_dim_key")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_span_rollups")),
        sa.UniqueConstraint(
            "dim_key",
            "dim_value",
            "name",
            "bucket_start",
            name=op.f("uq_span_rollups_dim_key_dim_value_name_bucket_start"),
        ),
    )
    op.create_index(
        "ix_span_rollups_dim_key_dim_value_bucket_start",
        "span_rollups",
        ["dim_key", "dim_value", "bucket_start"],
    )


def downgrade() -> None:
    op.drop_index("ix_span_rollups_dim_key_dim_value_bucket_start", table_name="span_rollups")
    op.drop_table("span_rollups")
    op.drop_index("ix_traces_service_name_start_at", table_name="traces")
    op.drop_index("ix_traces_model_start_at", table_name="traces")
    op.drop_table("traces")
