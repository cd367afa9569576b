"""Weekly reports, alerts about incidents, and their deliveries per channel.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The portable types of observe.db.base, spelled out so this revision never changes with them.
UTC_DATETIME = sa.DateTime(timezone=True)
BIG_INT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "reports",
        sa.Column("id", BIG_INT, autoincrement=True, nullable=False),
        sa.Column("week", sa.String(length=8), nullable=False),
        sa.Column("week_start", UTC_DATETIME, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("content", JSON, nullable=False),
        sa.Column("num_needs_attention", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.CheckConstraint("kind IN ('model', 'summary')", name=op.f("ck_reports_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reports")),
        sa.UniqueConstraint("week", "kind", "model", name=op.f("uq_reports_week_kind_model")),
    )
    op.create_index("ix_reports_week_start", "reports", ["week_start"])
    op.create_table(
        "alerts",
        sa.Column("id", BIG_INT, autoincrement=True, nullable=False),
        sa.Column("incident_key", sa.String(length=128), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("model_version", sa.String(length=200), nullable=True),
        sa.Column("finding_id", BIG_INT, nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("details", JSON, nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.CheckConstraint("state IN ('opened', 'resolved')", name=op.f("ck_alerts_state")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("incident_key", "state", name=op.f("uq_alerts_incident_key_state")),
    )
    op.create_index("ix_alerts_subject", "alerts", ["subject"])
    op.create_index("ix_alerts_created_at", "alerts", ["created_at"])
    op.create_table(
        "deliveries",
        sa.Column("id", BIG_INT, autoincrement=True, nullable=False),
        sa.Column("week", sa.String(length=8), nullable=True),
        sa.Column("alert_id", BIG_INT, nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", UTC_DATETIME, nullable=True),
        sa.Column("sent_at", UTC_DATETIME, nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.CheckConstraint(
            "(week IS NULL) <> (alert_id IS NULL)", name=op.f("ck_deliveries_subject")
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'failed')", name=op.f("ck_deliveries_status")
        ),
        sa.CheckConstraint(
            "channel IN ('directory', 'webhook', 'email')", name=op.f("ck_deliveries_channel")
        ),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alerts.id"],
            name=op.f("fk_deliveries_alert_id_alerts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint("week", "channel", name=op.f("uq_deliveries_week_channel")),
        sa.UniqueConstraint("alert_id", "channel", name=op.f("uq_deliveries_alert_id_channel")),
    )
    op.create_index(
        "ix_deliveries_status_next_attempt_at", "deliveries", ["status", "next_attempt_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_status_next_attempt_at", table_name="deliveries")
    op.drop_table("deliveries")
    op.drop_index("ix_alerts_created_at", table_name="alerts")
    op.drop_index("ix_alerts_subject", table_name="alerts")
    op.drop_table("alerts")
    op.drop_index("ix_reports_week_start", table_name="reports")
    op.drop_table("reports")
