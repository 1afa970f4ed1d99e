"""Batch updates of the ``device`` table from ingested messages (Core, executemany)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Connection, Table, bindparam, case, func, or_, update

from controller.ingest.sql import insert_ignore
from controller.models import Device, UtcDateTime

DEVICE: Table = Device.__table__  # type: ignore[attr-defined]


def ensure_devices(conn: Connection, device_ids: set[str], now: datetime) -> None:
    """Create rows for devices seen for the first time (not enrolled by an operator)."""
    if not device_ids:
        return
    rows = [{"id": d, "created_at": now, "enrolled": False, "cmd_seq": 0} for d in device_ids]
    conn.execute(insert_ignore(conn, DEVICE, ["id"]), rows)


def mark_seen(conn: Connection, latest: dict[str, tuple[int, datetime]]) -> None:
    """Set ``last_seen_at`` and raise ``last_seq`` for each device in the batch."""
    if not latest:
        return
    seq = bindparam("b_seq", type_=BigInteger)
    stmt = (
        update(DEVICE)
        .where(DEVICE.c.id == bindparam("b_id"))
        .values(
            last_seen_at=bindparam("b_seen", type_=UtcDateTime),
            last_seq=case(
                (or_(DEVICE.c.last_seq.is_(None), DEVICE.c.last_seq < seq), seq),
                else_=DEVICE.c.last_seq,
            ),
        )
    )
    conn.execute(
        stmt,
        [{"b_id": d, "b_seq": s, "b_seen": seen} for d, (s, seen) in latest.items()],
    )


def apply_updates(
    conn: Connection,
    timestamp_column: str,
    updates: dict[str, dict[str, Any]],
    *,
    newer_only: bool = True,
) -> None:
    """Set columns from the latest message of one kind per device.

    With ``newer_only`` a row already holding a later ``timestamp_column`` is
    left alone. State is applied in arrival order instead: the broker sends an
    agent's Last Will (``offline``) with the ``sent_at`` and ``seq`` fixed when
    the agent connected, i.e. older than the ``online`` state it must replace.
    """
    if not updates:
        return
    column = DEVICE.c[timestamp_column]
    stamp = bindparam("b_at", type_=UtcDateTime)
    stmt = update(DEVICE).where(DEVICE.c.id == bindparam("b_id"))
    if newer_only:
        stmt = stmt.where(or_(column.is_(None), column <= stamp))
    rows = []
    for device_id, values in updates.items():
        values = dict(values)
        hello_class = values.pop("hello_class", None)
        row = {"b_id": device_id, "b_at": values[timestamp_column], **values}
        if timestamp_column == "hello_at":
            row["b_class"] = hello_class
        rows.append(row)
    if timestamp_column == "hello_at":
        # a class set by the operator wins over the one the agent announces
        stmt = stmt.values(device_class=func.coalesce(DEVICE.c.device_class, bindparam("b_class")))
    conn.execute(stmt, rows)
