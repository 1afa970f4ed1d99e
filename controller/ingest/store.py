"""Write a batch of received MQTT messages in one transaction: idempotent, nothing lost.

Each message ends as exactly one of: stored, duplicate (same ``(device_id,
seq)`` already stored, e.g. a QoS 1 redelivery or a retained message seen
again) or dead letter (with a reason). The ``ingested_message`` ledger,
written with ``ON CONFLICT DO NOTHING ... RETURNING``, decides what is new,
so concurrent controller replicas cannot store a message twice.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Table, delete, func, insert, select, tuple_
from sqlalchemy.exc import OperationalError

from controller.ingest import bench_record
from controller.ingest import rows as R
from controller.ingest.acks import apply_acks
from controller.ingest.devices import apply_updates, ensure_devices, mark_seen
from controller.ingest.mqtt import Received
from controller.ingest.sql import insert_add, insert_ignore
from controller.models import (
    BenchmarkQuestion,
    BenchmarkResult,
    BenchmarkRun,
    CommandAck,
    DeadLetter,
    DeadLetterCount,
    DeviceState,
    Heartbeat,
    IngestedMessage,
    ServingMetric,
)
from shared.messages import MAX_PAYLOAD_BYTES, Envelope, MessageRejected, parse_message
from shared.topics import TopicError, TopicKind, Topics

logger = logging.getLogger(__name__)

SEQ_CONFLICT = "seq_conflict"
"""A ``(device_id, seq)`` already stored with a different kind or send time (seq reused)."""
DUPLICATE_RUN = "duplicate_run"
"""A bench result whose (device, run_id, model) is already stored under another seq."""
STORE_ERROR = "store_error"
CLOCK_SKEW = "clock_skew"
"""A ``sent_at`` further in the future than allowed: it would pin the device's timestamps."""
"""The database refused the message's values (e.g. a string longer than its column)."""


def _table(model: Any) -> Table:
    return model.__table__


LEDGER, DEAD, DEAD_COUNT = _table(IngestedMessage), _table(DeadLetter), _table(DeadLetterCount)
SERIES: dict[TopicKind, tuple[Table, Any]] = {
    TopicKind.HEARTBEAT: (_table(Heartbeat), R.heartbeat_row),
    TopicKind.METRICS: (_table(ServingMetric), R.metric_row),
    TopicKind.STATE: (_table(DeviceState), R.state_row),
    TopicKind.ACK: (_table(CommandAck), R.ack_row),
}
DEVICE_UPDATES: dict[TopicKind, tuple[str, Any]] = {
    TopicKind.HELLO: ("hello_at", R.hello_update),
    TopicKind.STATE: ("state_at", R.state_update),
    TopicKind.HEARTBEAT: ("last_heartbeat_at", R.heartbeat_update),
}


@dataclass
class Outcome:
    """What became of a batch."""

    stored: int = 0
    duplicates: int = 0
    dead: Counter[str] = field(default_factory=Counter)
    handled: dict[str, set[int]] = field(default_factory=dict)
    """Per device, the seqs this batch settled for good (stored, duplicate or dead letter):
    what the controller confirms to the device (see :class:`shared.messages.StoredBody`)."""

    def add(self, other: Outcome) -> None:
        """Accumulate another outcome into this one."""
        self.stored += other.stored
        self.duplicates += other.duplicates
        self.dead.update(other.dead)
        for device_id, seqs in other.handled.items():
            self.handled.setdefault(device_id, set()).update(seqs)


@dataclass
class _Item:
    received: Received
    envelope: Envelope[Any]
    kind: TopicKind = field(init=False)

    def __post_init__(self) -> None:
        self.kind = self.envelope.kind  # computed once: it is read several times per message

    @property
    def key(self) -> tuple[str, int]:
        return (self.envelope.device_id, self.envelope.seq)


@dataclass
class _Batch:
    items: list[_Item] = field(default_factory=list)
    dead: list[dict[str, Any]] = field(default_factory=list)
    duplicates: int = 0
    refused_keys: list[tuple[str, int]] = field(default_factory=list)
    """(device, seq) of refused payloads whose topic and seq could still be read."""


class IngestStore:
    """Validates and writes batches; raises only :class:`OperationalError` (retry later)."""

    def __init__(
        self,
        engine: Engine,
        *,
        topics: Topics,
        keep_payload_bytes: int = 4096,
        max_future_skew: timedelta = timedelta(hours=1),
    ) -> None:
        self.engine = engine
        self.topics = topics
        self.keep_payload_bytes = keep_payload_bytes
        self.max_future_skew = max_future_skew

    def write(self, received: list[Received]) -> Outcome:
        """Store a batch; a value the database refuses dead-letters only its own message."""
        batch = self._parse(received)
        try:
            with self.engine.begin() as conn:
                return self._write(conn, batch)
        except OperationalError:
            raise
        except Exception:  # a refused value or a bug: isolate it to its own message
            logger.warning(
                "batch of %d refused by the database; retrying one by one", len(received)
            )
        outcome = Outcome()
        for one in received:
            outcome.add(self._write_one(one))
        return outcome

    def prune_ledger(self, *, before: datetime) -> int:
        """Forget ``(device_id, seq)`` entries received before ``before``; returns how many.

        Redelivery happens within a broker session's lifetime, so entries much
        older than the session expiry can no longer prevent a duplicate.
        """
        with self.engine.begin() as conn:
            result = conn.execute(delete(LEDGER).where(LEDGER.c.received_at < before))
        return int(result.rowcount)

    def prune_dead_letters(self, *, max_rows: int, max_bytes: int) -> int:
        """Delete the oldest dead letters beyond ``max_rows`` or ``max_bytes`` of kept payload.

        The per-reason counters live in their own table, so they stay exact.
        """
        newest_first = select(
            DEAD.c.id,
            func.row_number().over(order_by=DEAD.c.id.desc()).label("n"),
            func.sum(func.length(DEAD.c.payload)).over(order_by=DEAD.c.id.desc()).label("kept"),
        ).subquery()
        beyond = select(newest_first.c.id).where(
            (newest_first.c.n > max_rows) | (newest_first.c.kept > max_bytes)
        )
        with self.engine.begin() as conn:
            result = conn.execute(delete(DEAD).where(DEAD.c.id.in_(beyond)))
        return int(result.rowcount)

    def _write_one(self, received: Received) -> Outcome:
        batch = self._parse([received])
        try:
            with self.engine.begin() as conn:
                return self._write(conn, batch)
        except OperationalError:
            raise
        except Exception as exc:
            detail = str(getattr(exc, "orig", exc)).splitlines()[0][:500]
            key = self._claimed_key(received)
            dead = _Batch(
                dead=[self._dead_row(received, STORE_ERROR, detail)],
                refused_keys=[key] if key is not None else [],
            )
            with self.engine.begin() as conn:
                return self._write(conn, dead)

    def _parse(self, received: list[Received]) -> _Batch:
        batch = _Batch()
        for message in received:
            try:
                envelope = parse_message(message.topic, message.payload, topics=self.topics)
            except MessageRejected as exc:
                batch.dead.append(self._dead_row(message, exc.reason.value, exc.detail))
                key = self._claimed_key(message)
                if key is not None:
                    batch.refused_keys.append(key)
                continue
            if envelope.sent_at > message.received_at + self.max_future_skew:
                detail = (
                    f"sent_at {envelope.sent_at.isoformat()} is ahead of the controller's clock"
                )
                batch.dead.append(self._dead_row(message, CLOCK_SKEW, detail))
                continue
            batch.items.append(_Item(message, envelope))
        return batch

    def _claimed_key(self, message: Received) -> tuple[str, int] | None:
        """The (device, seq) a refused payload claims, so the device is told to stop resending."""
        if len(message.payload) > MAX_PAYLOAD_BYTES:
            return None
        try:
            device_id = self.topics.parse(message.topic).device_id
            seq = json.loads(message.payload).get("seq")
        except (TopicError, ValueError, AttributeError):
            return None
        return (device_id, seq) if type(seq) is int and seq >= 0 else None

    def _dead_row(self, message: Received, reason: str, detail: str) -> dict[str, Any]:
        try:
            device_id: str | None = self.topics.parse(message.topic).device_id
        except TopicError:
            device_id = None
        return {
            "received_at": message.received_at,
            "topic": message.topic[:1024],
            "device_id": device_id,
            "reason": reason,
            "detail": detail[:2000],
            "payload": message.payload[: self.keep_payload_bytes],
            "payload_size": len(message.payload),
        }

    def _write(self, conn: Connection, batch: _Batch) -> Outcome:
        fresh = self._claim(conn, batch)
        self._store_series(conn, fresh)
        self._store_devices(conn, fresh)
        self._store_acks(conn, fresh)
        stored_bench = self._store_bench(conn, fresh, batch)
        self._store_dead(conn, batch.dead)
        outcome = Outcome(stored=len(fresh) - stored_bench, duplicates=batch.duplicates)
        outcome.dead.update(row["reason"] for row in batch.dead)
        for device_id, seq in [item.key for item in batch.items] + batch.refused_keys:
            outcome.handled.setdefault(device_id, set()).add(seq)
        return outcome

    def _claim(self, conn: Connection, batch: _Batch) -> list[_Item]:
        """Insert ledger rows; return the items that were not stored before."""
        unique: dict[tuple[str, int], _Item] = {}
        for item in batch.items:
            if item.key in unique:
                self._duplicate(batch, item, unique[item.key].envelope)
            else:
                unique[item.key] = item
        if not unique:
            return []
        ledger_rows = [
            {
                "device_id": key[0],
                "seq": key[1],
                "kind": item.kind.value,
                "sent_at": item.envelope.sent_at,
                "received_at": item.received.received_at,
            }
            for key, item in unique.items()
        ]
        stmt = insert_ignore(conn, LEDGER, ["device_id", "seq"]).returning(
            LEDGER.c.device_id, LEDGER.c.seq
        )
        new = {(row[0], row[1]) for row in conn.execute(stmt, ledger_rows)}
        seen = [item for key, item in unique.items() if key not in new]
        if seen:
            self._check_seen(conn, batch, seen)
        return [item for key, item in unique.items() if key in new]

    def _check_seen(self, conn: Connection, batch: _Batch, seen: list[_Item]) -> None:
        keys = [item.key for item in seen]
        query = select(LEDGER.c.device_id, LEDGER.c.seq, LEDGER.c.kind, LEDGER.c.sent_at).where(
            tuple_(LEDGER.c.device_id, LEDGER.c.seq).in_(keys)
        )
        stored = {(r.device_id, r.seq): (r.kind, r.sent_at) for r in conn.execute(query)}
        for item in seen:
            kind, sent_at = stored.get(item.key, (None, None))
            self._duplicate_of(batch, item, kind, sent_at)

    def _duplicate(self, batch: _Batch, item: _Item, first: Envelope[Any]) -> None:
        self._duplicate_of(batch, item, first.kind.value, first.sent_at)

    def _duplicate_of(
        self, batch: _Batch, item: _Item, kind: str | None, sent_at: datetime | None
    ) -> None:
        if kind == item.kind.value and sent_at == item.envelope.sent_at:
            batch.duplicates += 1
            return
        detail = (
            f"seq {item.envelope.seq} of {item.envelope.device_id} was already used by a "
            f"{kind} message sent at {sent_at}"
        )
        batch.dead.append(self._dead_row(item.received, SEQ_CONFLICT, detail))

    def _store_series(self, conn: Connection, fresh: list[_Item]) -> None:
        for kind, (table, to_row) in SERIES.items():
            rows = [to_row(i.envelope, i.received.received_at) for i in fresh if i.kind == kind]
            if rows:
                conn.execute(insert(table), rows)

    def _store_devices(self, conn: Connection, fresh: list[_Item]) -> None:
        if not fresh:
            return
        latest: dict[str, tuple[int, datetime]] = {}
        newest: dict[TopicKind, dict[str, _Item]] = {kind: {} for kind in DEVICE_UPDATES}
        for item in fresh:
            device_id, seq = item.key
            if device_id not in latest or latest[device_id][0] < seq:
                latest[device_id] = (seq, item.received.received_at)
            per_kind = newest.get(item.kind)
            if per_kind is not None:
                per_kind[device_id] = item  # the batch is in arrival order: last one wins
        ensure_devices(conn, set(latest), max(s for _, s in latest.values()))
        mark_seen(conn, latest)
        for kind, (column, to_update) in DEVICE_UPDATES.items():
            updates = {d: to_update(i.envelope) for d, i in newest[kind].items()}
            apply_updates(conn, column, updates, newer_only=kind is not TopicKind.STATE)

    def _store_acks(self, conn: Connection, fresh: list[_Item]) -> None:
        acks = [i.envelope for i in fresh if i.kind == TopicKind.ACK]
        if acks:
            apply_acks(conn, acks)

    def _store_bench(self, conn: Connection, fresh: list[_Item], batch: _Batch) -> int:
        """Insert bench runs with their detail rows; return how many were dead-lettered."""
        refused = 0
        for item in fresh:
            if item.kind != TopicKind.BENCH:
                continue
            run = bench_record.run_row(item.envelope, item.received.received_at)
            stmt = insert_ignore(
                conn, _table(BenchmarkRun), ["device_id", "run_id", "model_id"]
            ).returning(_table(BenchmarkRun).c.id)
            run_pk = conn.execute(stmt, run).scalar()
            if run_pk is None:
                refused += 1
                detail = f"run {run['run_id']!r} of {run['model_id']!r} is already stored"
                batch.dead.append(self._dead_row(item.received, DUPLICATE_RUN, detail))
                continue
            results, questions = bench_record.detail_rows(item.envelope, run_pk)
            if results:
                conn.execute(insert(_table(BenchmarkResult)), results)
            if questions:
                conn.execute(insert(_table(BenchmarkQuestion)), questions)
        return refused

    def _store_dead(self, conn: Connection, dead: list[dict[str, Any]]) -> None:
        if not dead:
            return
        conn.execute(insert(DEAD), dead)
        counts: dict[str, dict[str, Any]] = {}
        for row in dead:
            entry = counts.setdefault(row["reason"], {"reason": row["reason"], "count": 0})
            entry["count"] += 1
            entry["last_at"] = row["received_at"]
        stmt = insert_add(conn, DEAD_COUNT, ["reason"], "count", "last_at")
        for entry in counts.values():
            conn.execute(stmt, entry)
