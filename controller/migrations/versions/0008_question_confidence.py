"""Per-item bench rows keep the strategy's own confidence (calibrating the gateway's escalation).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 11:00:00.000000

Rows written before stay null: no strategy checked itself then, or it was not kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("benchmark_question", schema=None) as batch_op:
        batch_op.add_column(sa.Column("confidence", sa.Float(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("benchmark_question", schema=None) as batch_op:
        batch_op.drop_column("confidence")
