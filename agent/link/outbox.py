"""The on-disk outbox: every non-retained message is stored here before it is published.

A row lives until the controller confirms it stored its ``seq`` (the
``stored`` topic, end-to-end acknowledgement). The broker's PUBACK only marks
it published: a broker killed with the controller loses what it acknowledged
since its last save, so unconfirmed rows are published again on every
reconnect (and after ``confirm_timeout_s`` when the controller has confirmed
later seqs meanwhile); ingest dedupes by ``(device_id, seq)``. Messages
survive broker outages, controller crashes and agent restarts and are
replayed in insertion order. The same SQLite file (WAL mode) keeps the
per-device ``seq`` counter, which must keep rising across restarts, and the
commands already handled.

Bound and drop policy: at most ``max_unconfirmed`` published rows wait for
confirmation; beyond that the oldest are forgotten, falling back to the
broker's PUBACK as the guarantee (an old controller that never confirms
thus costs a bounded window, replayed on reconnect, not a growing file).
When ``max_messages`` rows are stored, published rows waiting for
confirmation go first (the broker has them), then the oldest heartbeat,
then the oldest metrics report, then the oldest ack; a new message is itself
dropped when only more valuable rows are left (a new heartbeat never pushes
out a metrics report). Bench results are never dropped: if only bench rows
remain, the bound is exceeded by bench rows rather than losing a measurement
that took minutes to make.

A full disk makes :meth:`Outbox.put_sequenced` raise :class:`OutboxFull`
(the caller logs it and goes on); rows already stored stay and drain.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterable
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
    created_at REAL NOT NULL,
    seq INTEGER,
    published_at REAL
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
_INDEXES = """
CREATE INDEX IF NOT EXISTS outbox_seq ON outbox (seq);
CREATE INDEX IF NOT EXISTS outbox_published ON outbox (published_at, id);
"""
_ADDED_COLUMNS = {"seq": "INTEGER", "published_at": "REAL"}
"""Columns an outbox written by an older agent lacks (its rows have no seq: PUBACK ends them)."""


class OutboxFull(OSError):
    """The outbox could not store a message: the disk (or the file's size limit) is full."""


def _full_or(exc: sqlite3.OperationalError, what: str) -> Exception:
    """:class:`OutboxFull` for a full disk or file-size limit, else the error itself."""
    if "full" in str(exc) or "disk I/O" in str(exc):
        return OutboxFull(f"outbox cannot store {what}: {exc} (free disk space)")
    return exc


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

    def __init__(
        self,
        path: Path,
        *,
        max_messages: int = 20_000,
        max_unconfirmed: int = 5_000,
        keep_commands: int = 1000,
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        present = {row[1] for row in self._db.execute("PRAGMA table_info(outbox)")}
        for column, sql_type in _ADDED_COLUMNS.items():
            if column not in present:
                self._db.execute(f"ALTER TABLE outbox ADD COLUMN {column} {sql_type}")
        self._db.executescript(_INDEXES)
        self._lock = threading.Lock()
        self.max_messages = max_messages
        self.max_unconfirmed = max_unconfirmed
        self.keep_commands = keep_commands
        self.dropped: dict[str, int] = {}
        self.released = 0
        self._published_unsaved: set[int] = set()
        """Published rows forgotten unconfirmed (``max_unconfirmed`` or ``max_messages``)."""

    def close(self) -> None:
        """Close the database; later calls fail."""
        with self._lock:
            self._db.close()

    # --- seq -------------------------------------------------------------

    def next_seq(self) -> int:
        """The next envelope seq, persisted so it rises across restarts (else OutboxFull)."""
        with self._lock:
            try:
                return self._bump_seq()
            except sqlite3.OperationalError as exc:
                raise _full_or(exc, "the next seq") from exc

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
        Raises :class:`OutboxFull` when the disk is full; nothing stored before is touched.
        """
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    seq = self._bump_seq()
                    row_id: int | None = 0
                    if self._make_room(kind):
                        row_id = self._db.execute(
                            "INSERT INTO outbox (kind, topic, payload, created_at, seq) "
                            "VALUES (?, ?, ?, ?, ?)",
                            (kind.value, topic, build(seq), time.time(), seq),
                        ).lastrowid
                    self._db.execute("COMMIT")
                except BaseException:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
            except sqlite3.OperationalError as exc:
                raise _full_or(exc, f"a {kind.value} message") from exc
        return int(row_id or 0), seq

    def _make_room(self, incoming: TopicKind) -> bool:
        """Drop by policy until one more row fits; False if the incoming one is dropped instead."""
        (depth,) = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()
        excess = depth - self.max_messages + 1
        if excess > 0:
            excess -= self._release_oldest_published(excess)
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

    def pending(self, *, skip: Collection[int] = (), limit: int = 100) -> list[OutboxRow]:
        """Rows to publish (never published, or due again), oldest first, except ``skip``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, kind, topic, payload FROM outbox WHERE published_at IS NULL "
                "ORDER BY id LIMIT ?",
                (limit + len(skip) + len(self._published_unsaved),),
            ).fetchall()
            unsaved = set(self._published_unsaved)
        fresh = [OutboxRow(r[0], TopicKind(r[1]), r[2], bytes(r[3])) for r in rows]
        return [row for row in fresh if row.id not in skip and row.id not in unsaved][:limit]

    def published(self, row_id: int) -> None:
        """The broker acknowledged a row: it now waits for the controller's confirmation.

        A row without a seq (written by an older agent) is forgotten at once.
        On a full disk the mark is kept in memory, so the row is not sent again
        until the next reconnect.
        """
        with self._lock:
            marked = self._write(
                "UPDATE outbox SET published_at = ? WHERE id = ? AND seq IS NOT NULL",
                (time.time(), row_id),
            )
            if marked is None:
                self._published_unsaved.add(row_id)
            self._write("DELETE FROM outbox WHERE id = ? AND seq IS NULL", (row_id,))

    def delete(self, row_id: int) -> None:
        """Forget a row (one the broker refused for good)."""
        with self._lock:
            self._db.execute("DELETE FROM outbox WHERE id = ?", (row_id,))

    def confirm(self, ranges: Iterable[tuple[int, int]]) -> int:
        """Forget the rows whose seq the controller confirmed stored; how many went.

        On a full disk they stay, and are published again (then confirmed again) later.
        """
        removed = 0
        with self._lock:
            for first, last in ranges:
                gone = self._write("DELETE FROM outbox WHERE seq BETWEEN ? AND ?", (first, last))
                removed += gone or 0
        return removed

    def republish_all(self) -> int:
        """Mark every unconfirmed row for publishing again (after a reconnect); how many."""
        with self._lock:
            self._published_unsaved.clear()
            return (
                self._write(
                    "UPDATE outbox SET published_at = NULL WHERE published_at IS NOT NULL", ()
                )
                or 0
            )

    def save_published_marks(self) -> None:
        """Write the published marks a full disk kept in memory (called now and then)."""
        with self._lock:
            unsaved = list(self._published_unsaved)
            if not unsaved:
                return
            marks = ",".join("?" * len(unsaved))
            saved = self._write(
                f"UPDATE outbox SET published_at = ? WHERE id IN ({marks}) AND seq IS NOT NULL",
                (time.time(), *unsaved),
            )
            if saved is not None:
                self._published_unsaved.difference_update(unsaved)

    def republish_stale(self, *, published_before: float, below_seq: int) -> int:
        """Publish again rows acknowledged before ``published_before`` with seq < ``below_seq``.

        A later seq was confirmed, so these were lost on the way; how many.
        """
        with self._lock:
            return (
                self._write(
                    "UPDATE outbox SET published_at = NULL WHERE published_at < ? AND seq < ?",
                    (published_before, below_seq),
                )
                or 0
            )

    def _write(self, sql: str, params: tuple[object, ...]) -> int | None:
        """Run a bookkeeping write; rows changed, or None on a full disk (logged; retried later)."""
        try:
            return int(self._db.execute(sql, params).rowcount)
        except sqlite3.OperationalError as exc:
            error = _full_or(exc, "bookkeeping")
            if not isinstance(error, OutboxFull):
                raise
            logger.error("%s", error)
            return None

    def enforce_unconfirmed_bound(self) -> int:
        """Forget the oldest published rows beyond ``max_unconfirmed``; how many."""
        with self._lock:
            (waiting,) = self._db.execute(
                "SELECT COUNT(*) FROM outbox WHERE published_at IS NOT NULL"
            ).fetchone()
            excess = int(waiting) - self.max_unconfirmed
            return self._release_oldest_published(excess) if excess > 0 else 0

    def _release_oldest_published(self, count: int) -> int:
        removed = int(
            self._db.execute(
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox "
                "WHERE published_at IS NOT NULL ORDER BY id LIMIT ?)",
                (count,),
            ).rowcount
        )
        if removed:
            self.released += removed
            logger.warning(
                "outbox: forgot %d published message(s) the controller has not confirmed "
                "(bound reached; the broker acknowledged them)",
                removed,
            )
        return removed

    def depth(self) -> int:
        """How many messages wait for a PUBACK."""
        with self._lock:
            (count,) = self._db.execute(
                "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL"
            ).fetchone()
        return int(count)

    def unconfirmed(self) -> int:
        """How many published messages wait for the controller's confirmation."""
        with self._lock:
            (count,) = self._db.execute(
                "SELECT COUNT(*) FROM outbox WHERE published_at IS NOT NULL"
            ).fetchone()
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
