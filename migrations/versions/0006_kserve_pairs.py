"""KServe / Seldon payload-logger events waiting for their partner.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The portable types of observe.db.base, spelled out so this revision never changes with them.
UTC_DATETIME = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIG_INT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "kserve_pairs",
        sa.Column("id", BIG_INT, autoincrement=True, nullable=False),
        sa.Column("pair_key", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("request", JSON, nullable=True),
        sa.Column("response", JSON, nullable=True),
        sa.Column("received_at", UTC_DATETIME, nullable=False),
        sa.Column("joined_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kserve_pairs")),
        sa.UniqueConstraint("pair_key", name=op.f("uq_kserve_pairs_pair_key")),
    )
    op.create_index("ix_kserve_pairs_received_at", "kserve_pairs", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_kserve_pairs_received_at", table_name="kserve_pairs")
    op.drop_table("kserve_pairs")
