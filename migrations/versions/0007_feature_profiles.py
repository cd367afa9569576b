"""Hourly and daily feature profiles for drift over long windows, and the profiling watermark.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DATETIME = sa.DateTime(timezone=True)
BIG_INT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "feature_profiles",
        sa.Column("id", BIG_INT, autoincrement=True, nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("model_version", sa.String(length=200), nullable=False),
        sa.Column("hour_start", UTC_DATETIME, nullable=False),
        sa.Column("feature", sa.String(length=200), nullable=False),
        sa.Column("num_rows", BIG_INT, nullable=False),
        sa.Column("profile", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feature_profiles")),
        sa.UniqueConstraint(
            "model",
            "model_version",
            "hour_start",
            "feature",
            name=op.f("uq_feature_profiles_model_model_version_hour_start_feature"),
        ),
    )
    op.create_index(
        "ix_feature_profiles_model_hour_start", "feature_profiles", ["model", "hour_start"]
    )
    op.create_table(
        "feature_profile_days",
        sa.Column("id", BIG_INT, autoincrement=True, nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("model_version", sa.String(length=200), nullable=False),
        sa.Column("day_start", UTC_DATETIME, nullable=False),
        sa.Column("feature", sa.String(length=200), nullable=False),
        sa.Column("num_rows", BIG_INT, nullable=False),
        sa.Column("profile", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feature_profile_days")),
        sa.UniqueConstraint(
            "model",
            "model_version",
            "day_start",
            "feature",
            name=op.f("uq_feature_profile_days_model_model_version_day_start_feature"),
        ),
    )
    op.create_index(
        "ix_feature_profile_days_model_day_start", "feature_profile_days", ["model", "day_start"]
    )
    op.create_table(
        "profiling_watermarks",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("last_id", BIG_INT, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_profiling_watermarks")),
    )


def downgrade() -> None:
    op.drop_table("profiling_watermarks")
    op.drop_index("ix_feature_profile_days_model_day_start", table_name="feature_profile_days")
    op.drop_table("feature_profile_days")
    op.drop_index("ix_feature_profiles_model_hour_start", table_name="feature_profiles")
    op.drop_table("feature_profiles")
