"""Job claims: one row per (periodic job, time slot), so each slot runs once across processes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The portable types of observe.db.base, spelled out so this revision never changes with them.
UTC_DATETIME = sa.DateTime(timezone=True)
BIG_INT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "job_claims",
        sa.Column("id", BIG_INT, autoincrement=True, nullable=False),
        sa.Column("job", sa.String(length=100), nullable=False),
        sa.Column("slot_start", UTC_DATETIME, nullable=False),
        sa.Column("claimed_at", UTC_DATETIME, nullable=False),
        sa.Column("claimed_by", sa.String(length=200), nullable=False),
        sa.Column("finished_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_claims")),
        sa.UniqueConstraint("job", "slot_start", name=op.f("uq_job_claims_job_slot_start")),
    )


def downgrade() -> None:
    op.drop_table("job_claims")
