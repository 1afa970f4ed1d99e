"""Evaluation suites: the suite table, per-item rows of every item type, judge and suite per run.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 03:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "suite",
        sa.Column("id", AutoString(length=80), nullable=False),
        sa.Column("version", AutoString(length=40), nullable=False),
        sa.Column("sha256", AutoString(length=64), nullable=False),
        sa.Column("description", AutoString(), nullable=False),
        sa.Column("n_items", sa.Integer(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("created_by", AutoString(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("suite", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_suite_sha256"), ["sha256"], unique=False)
    with op.batch_alter_table("benchmark_question", schema=None) as batch_op:
        batch_op.alter_column("question_id", new_column_name="item_id")
        batch_op.alter_column("exact_correct", new_column_name="correct")
        batch_op.add_column(
            sa.Column("type", AutoString(length=8), nullable=False, server_default="judged")
        )
        batch_op.add_column(sa.Column("correct_norm", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("reference_correct", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("chosen", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("answer", AutoString(length=1000), nullable=True))
    with op.batch_alter_table("benchmark_result", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("type", AutoString(length=8), nullable=False, server_default="judged")
        )
    with op.batch_alter_table("benchmark_run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("judge_sha256", AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column("suite_name", AutoString(length=80), nullable=True))
        batch_op.add_column(sa.Column("suite_sha256", AutoString(length=64), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("benchmark_run", schema=None) as batch_op:
        for column in ("suite_sha256", "suite_name", "judge_sha256"):
            batch_op.drop_column(column)
    with op.batch_alter_table("benchmark_result", schema=None) as batch_op:
        batch_op.drop_column("type")
    with op.batch_alter_table("benchmark_question", schema=None) as batch_op:
        for column in ("answer", "chosen", "reference_correct", "correct_norm", "type"):
            batch_op.drop_column(column)
        batch_op.alter_column("correct", new_column_name="exact_correct")
        batch_op.alter_column("item_id", new_column_name="question_id")
    with op.batch_alter_table("suite", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_suite_sha256"))
    op.drop_table("suite")
