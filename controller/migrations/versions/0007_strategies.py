"""Options are (model, strategy): a strategy column beside every refine flag, filled from it.

Also the message version of each device's last hello (commands are written in it).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 06:00:00.000000

Named 0006 because 0005 (leases) lands from another branch; the lead re-chains
``down_revision`` to 0005 at merge. Rows written before strategies get the
strategy their refine flag meant (``refine:1`` or ``direct``), so nothing
downstream needs the flag to read them; the flag columns stay for older agents.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FLAGS = {
    "device": "refine",
    "device_state": "refine",
    "assignment": "refine",
    "pin": "refine",
    "benchmark_result": "refined",
    "benchmark_question": "refined",
}
"""Each table that gains ``strategy``, and the flag column its old rows are read from."""


def upgrade() -> None:
    """Apply this revision."""
    for table, flag in FLAGS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("strategy", AutoString(length=24), nullable=True))
        op.execute(
            sa.text(
                f"UPDATE {table} SET strategy = CASE WHEN {flag} THEN 'refine:1' "
                f"ELSE 'direct' END WHERE {flag} IS NOT NULL"
            )
        )
    with op.batch_alter_table("device", schema=None) as batch_op:
        batch_op.add_column(sa.Column("schema_version", sa.Integer(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("device", schema=None) as batch_op:
        batch_op.drop_column("schema_version")
    for table in reversed(FLAGS):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("strategy")
