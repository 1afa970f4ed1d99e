"""Latency columns named after the message fields (`<mode>_generated_tokens_mean`).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07 02:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RENAMES = {
    "zero_shot_tokens_mean": "zero_shot_generated_tokens_mean",
    "refined_tokens_mean": "refined_generated_tokens_mean",
}


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("benchmark_run") as batch_op:
        for old, new in RENAMES.items():
            batch_op.alter_column(old, new_column_name=new)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("benchmark_run") as batch_op:
        for old, new in RENAMES.items():
            batch_op.alter_column(new, new_column_name=old)
