"""Apply ``ack`` messages to the ``command`` table (final statuses are never overwritten)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table, bindparam, update

from controller.models import Command, CommandStatus, UtcDateTime
from shared.messages import AckBody, Envelope

COMMAND: Table = Command.__table__  # type: ignore[attr-defined]
FINAL = (CommandStatus.OK.value, CommandStatus.ERROR.value)


def apply_acks(conn: Connection, acks: list[Envelope[AckBody]]) -> None:
    """Move each acknowledged command to the ack's status, in seq order."""
    stmt = (
        update(COMMAND)
        .where(COMMAND.c.id == bindparam("b_id"))
        .where(COMMAND.c.device_id == bindparam("b_device"))
        .where(COMMAND.c.status.not_in(FINAL))
        .values(
            status=bindparam("b_status"),
            reason=bindparam("b_reason"),
            acked_at=bindparam("b_at", type_=UtcDateTime),
        )
    )
    for ack in sorted(acks, key=lambda a: a.seq):
        params: dict[str, Any] = {
            "b_id": ack.body.command_id,
            "b_device": ack.device_id,
            "b_status": ack.body.status.value,
            "b_reason": ack.body.reason,
            "b_at": ack.sent_at,
        }
        conn.execute(stmt, params)
