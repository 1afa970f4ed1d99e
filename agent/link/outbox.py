"""The on-disk outbox: every non-retained message is stored here before it is published.

A row is deleted only when the broker acknowledges it (PUBACK), so messages
survive broker outages and agent restarts and are replayed in insertion order.
The same SQLite file (WAL mode) keeps the per-device ``seq`` counter, which
must keep rising across restarts, and the commands already handled.

Bound and drop policy: when ``max_messages`` rows are waiting, the oldest
heartbeat is dropped first, then the oldest metrics report, then the oldest
ack; a new message is itself dropped when only more valuable rows are left
(a new heartbeat never pushes out a metrics report). Bench results are never
dropped: if only bench rows remain, the bound is exceeded by bench rows
rather than losing a measurement that took minutes to make.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.topics import TopicKind

logger = logging.getLogger(__name__)

DROP_ORDER = (TopicKind.HEARTBEAT, TopicKind.METRICS, TopicKind.ACK)
"""Kinds that may be dropped when the outbox is full, first to last. Never bench."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_kind ON outbox (kind, id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS commands (
    command_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    reason TEXT,
    detail TEXT NOT NULL DEFAULT '{}',
    handled_at REAL NOT NULL
);
"""


@dataclass(frozen=True)
class OutboxRow:
    """One stored message waiting for its PUBACK."""

    id: int
    kind: TopicKind
    topic: str
    payload: bytes


@dataclass(frozen=True)
class CommandRecord:
    """How a command ended (or that it is still running), for duplicate ids."""

    command_id: str
    status: str
    reason: str | None
    detail: dict[str, Any]


class Outbox:
    """Thread-safe SQLite outbox, seq counter and command log of one agent."""

    def __init__(self, path: Path, *, max_messages: int = 20_000, keep_commands: int = 1000):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self.max_messages = max_messages
        self.keep_commands = keep_commands
        self.dropped: dict[str, int] = {}

    def close(self) -> None:
        """Close the database; later calls fail."""
        with self._lock:
            self._db.close()

    # --- seq -------------------------------------------------------------

    def next_seq(self) -> int:
        """The next envelope seq; persisted, so it rises across restarts."""
        with self._lock:
            return self._bump_seq()

    def _bump_seq(self) -> int:
        row = self._db.execute(
            "INSERT INTO meta (key, value) VALUES ('seq', 0) "
            "ON CONFLICT (key) DO UPDATE SET value = value + 1 RETURNING value"
        ).fetchone()
        return int(row[0])

    # --- messages --------------------------------------------------------

    def put(self, kind: TopicKind, topic: str, payload: bytes) -> int:
        """Store a message (dropping by policy if full); return its row id (0: dropped)."""
        return self.put_sequenced(kind, topic, lambda _seq: payload)[0]

    def put_sequenced(
        self, kind: TopicKind, topic: str, build: Callable[[int], bytes]
    ) -> tuple[int, int]:
        """Take the next seq and store ``build(seq)`` in one step; return (row id, seq).

        One lock around both keeps seq order equal to replay order across threads.
        """
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                seq = self._bump_seq()
                row_id: int | None = 0
                if self._make_room(kind):
                    row_id = self._db.execute(
                        "INSERT INTO outbox (kind, topic, payload, created_at) VALUES (?, ?, ?, ?)",
                        (kind.value, topic, build(seq), time.time()),
                    ).lastrowid
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return int(row_id or 0), seq

    def _make_room(self, incoming: TopicKind) -> bool:
        """Drop by policy until one more row fits; False if the incoming one is dropped instead."""
        (depth,) = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()
        excess = depth - self.max_messages + 1
        for kind in DROP_ORDER:
            if excess <= 0:
                return True
            removed = self._db.execute(
                "DELETE FROM outbox WHERE id IN "
                "(SELECT id FROM outbox WHERE kind = ? ORDER BY id LIMIT ?)",
                (kind.value, excess),
            ).rowcount
            excess -= removed
            if excess > 0 and kind is incoming:
                removed += 1  # the newest of its kind: nothing less valuable is left
            if removed:
                self.dropped[kind.value] = self.dropped.get(kind.value, 0) + removed
                logger.warning("outbox full: dropped %d oldest %s message(s)", removed, kind.value)
            if excess > 0 and kind is incoming:
                return False
        return True

    def pending(self, *, after_id: int = 0, limit: int = 100) -> list[OutboxRow]:
        """Rows waiting to be published, oldest first, with ids above ``after_id``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, kind, topic, payload FROM outbox WHERE id > ? ORDER BY id LIMIT ?",
                (after_id, limit),
            ).fetchall()
        return [OutboxRow(r[0], TopicKind(r[1]), r[2], bytes(r[3])) for r in rows]

    def delete(self, row_id: int) -> None:
        """Forget a row once the broker has acknowledged it."""
        with self._lock:
            self._db.execute("DELETE FROM outbox WHERE id = ?", (row_id,))

    def depth(self) -> int:
        """How many messages wait for a PUBACK."""
        with self._lock:
            (count,) = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()
        return int(count)

    # --- commands --------------------------------------------------------

    def command(self, command_id: str) -> CommandRecord | None:
        """The stored outcome of a command id, if it was seen before."""
        with self._lock:
            row = self._db.execute(
                "SELECT command_id, status, reason, detail FROM commands WHERE command_id = ?",
                (command_id,),
            ).fetchone()
        if row is None:
            return None
        return CommandRecord(row[0], row[1], row[2], json.loads(row[3]))

    def record_command(
        self, command_id: str, status: str, reason: str | None = None, detail: Any = None
    ) -> None:
        """Remember a command's latest status; the log keeps the newest ``keep_commands``."""
        with self._lock:
            self._db.execute(
                "INSERT INTO commands (command_id, status, reason, detail, handled_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (command_id) DO UPDATE SET "
                "status = excluded.status, reason = excluded.reason, detail = excluded.detail, "
                "handled_at = excluded.handled_at",
                (command_id, status, reason, json.dumps(detail or {}), time.time()),
            )
            self._db.execute(
                "DELETE FROM commands WHERE command_id NOT IN "
                "(SELECT command_id FROM commands ORDER BY handled_at DESC LIMIT ?)",
                (self.keep_commands,),
            )

    def fail_unfinished_commands(self, reason: str) -> list[CommandRecord]:
        """Mark commands left ``accepted`` by a previous run as failed; the ones it marked."""
        with self._lock:
            rows = self._db.execute(
                "SELECT command_id, detail FROM commands WHERE status = 'accepted'"
            ).fetchall()
            self._db.execute(
                "UPDATE commands SET status = 'error', reason = ? WHERE status = 'accepted'",
                (reason,),
            )
        return [CommandRecord(row[0], "error", reason, json.loads(row[1])) for row in rows]
