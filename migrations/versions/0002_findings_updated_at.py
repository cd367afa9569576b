"""Findings: when each was last updated, and the statuses a finding can have.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("findings") as batch:
        batch.add_column(sa.Column("updated_at", UTC_DATETIME, nullable=True))
    op.execute("UPDATE findings SET updated_at = created_at")
    with op.batch_alter_table("findings") as batch:
        batch.alter_column("updated_at", existing_type=UTC_DATETIME, nullable=False)
        batch.create_index("ix_findings_updated_at", ["updated_at"])
        batch.create_check_constraint("status", "status IN ('open', 'resolved', 'ok')")


def downgrade() -> None:
    with op.batch_alter_table("findings") as batch:
        batch.drop_constraint(op.f("ck_findings_status"), type_="check")
        batch.drop_index("ix_findings_updated_at")
        batch.drop_column("updated_at")
