"""Profiler traces: per-step summaries, timeline chunks, operator positions, version index.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIG_INT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_index(
        "ix_profiler_traces_model_model_version_captured_at",
        "profiler_traces",
        ["model", "model_version", "captured_at"],
    )
    with op.batch_alter_table("profile_operators") as batch:
        batch.add_column(sa.Column("op_index", sa.Integer(), nullable=True))
    # Rows stored before this revision get distinct positions; new ones get the trace's order.
    op.execute("UPDATE profile_operators SET op_index = id")
    with op.batch_alter_table("profile_operators") as batch:
        batch.alter_column("op_index", existing_type=sa.Integer(), nullable=False)
        batch.drop_index("ix_profile_operators_profile_id")
        batch.create_unique_constraint(
            "uq_profile_operators_profile_id_op_index", ["profile_id", "op_index"]
        )
    op.create_table(
        "profile_steps",
        sa.Column("profile_id", BIG_INT, nullable=False),
        sa.Column("step", BIG_INT, nullable=False),
        sa.Column("start_us", sa.Float(), nullable=False),
        sa.Column("duration_us", sa.Float(), nullable=False),
        sa.Column("num_events", BIG_INT, nullable=False),
        sa.Column("self_us_by_category", JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["profiler_traces.id"],
            name=op.f("fk_profile_steps_profile_id_profiler_traces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("profile_id", "step", name=op.f("pk_profile_steps")),
    )
    op.create_table(
        "profile_timeline_chunks",
        sa.Column("profile_id", BIG_INT, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("thread", sa.Integer(), nullable=False),
        sa.Column("start_us", sa.Float(), nullable=False),
        sa.Column("end_us", sa.Float(), nullable=False),
        sa.Column("num_events", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["profiler_traces.id"],
            name=op.f("fk_profile_timeline_chunks_profile_id_profiler_traces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("profile_id", "seq", name=op.f("pk_profile_timeline_chunks")),
    )


def downgrade() -> None:
    op.drop_table("profile_timeline_chunks")
    op.drop_table("profile_steps")
    with op.batch_alter_table("profile_operators") as batch:
        batch.drop_constraint("uq_profile_operators_profile_id_op_index", type_="unique")
        batch.create_index("ix_profile_operators_profile_id", ["profile_id"])
        batch.drop_column("op_index")
    op.drop_index(
        "ix_profiler_traces_model_model_version_captured_at", table_name="profiler_traces"
    )
