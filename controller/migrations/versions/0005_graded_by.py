"""Judging off the device: which judge graded each judged item (id and sha256).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 06:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision; items judged on their own device take their run's judge."""
    with op.batch_alter_table("benchmark_question", schema=None) as batch_op:
        batch_op.add_column(sa.Column("judge_model_id", AutoString(length=128), nullable=True))
        batch_op.add_column(sa.Column("judge_sha256", AutoString(length=64), nullable=True))
    op.execute(
        "UPDATE benchmark_question SET "
        "judge_model_id = (SELECT judge_model_id FROM benchmark_run r WHERE r.id = run_pk), "
        "judge_sha256 = (SELECT judge_sha256 FROM benchmark_run r WHERE r.id = run_pk) "
        "WHERE type = 'judged'"
    )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("benchmark_question", schema=None) as batch_op:
        batch_op.drop_column("judge_sha256")
        batch_op.drop_column("judge_model_id")
