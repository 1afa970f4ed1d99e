"""Ingest: the MQTT connection hands messages to a queue; a writer thread stores them in batches.

The network thread only enqueues. The writer drains up to ``batch_size``
messages (or what arrived within ``flush_interval``), writes them in one
transaction, then acknowledges them to the broker. If the database is
unavailable the batch is retried, never dropped and never acknowledged, so
the broker still holds it if the controller dies meanwhile. After the
acknowledgement it tells each device which seqs are stored (``stored``
topic, QoS 0): the agent keeps a message until then, because a broker that
dies with the controller may lose what it had acknowledged to the device.

Trust: a Mosquitto subscriber cannot see which account published a message,
so the publisher's identity is enforced by the broker's ACLs (a device may
publish only under its own ``devices/{id}/``, see ``controller.broker``) and
ingest checks topic id == envelope id.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from controller.ingest.mqtt import MqttConnection, MqttOptions, Received
from controller.ingest.store import IngestStore, Outcome
from controller.models import utcnow
from shared.messages import MAX_STORED_RANGES, StoredBody, encode, make_envelope, seq_ranges
from shared.topics import TopicKind, Topics

logger = logging.getLogger(__name__)


@dataclass
class IngestStats:
    """Counters for /metrics and tests (written by the writer thread only)."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_letters: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    write_retries: int = 0
    confirmations: int = 0
    """``stored`` notices published to devices (end-to-end acknowledgements)."""
    last_batch_seconds: float = 0.0
    last_received: float | None = None
    """``time.monotonic()`` when the last message arrived (written by the network thread)."""

    @property
    def handled(self) -> int:
        """Messages that reached a final outcome."""
        return self.stored + self.duplicates + sum(self.dead_letters.values())


@dataclass(frozen=True)
class IngestConfig:
    """Tuning of the writer."""

    batch_size: int = 1000
    flush_interval_s: float = 0.2
    queue_size: int = 200_000
    keep_payload_bytes: int = 4096
    max_future_skew_s: float = 3600.0
    share_group: str | None = None
    ledger_retention_s: float = 30 * 24 * 3600
    prune_every_s: float = 600.0
    dead_letter_max_rows: int = 10_000
    dead_letter_max_bytes: int = 64 * 1024 * 1024
    dead_letter_prune_every_s: float = 1.0


class IngestService:
    """Subscribes to every agent topic and stores what arrives."""

    def __init__(
        self, engine: Engine, options: MqttOptions, *, topics: Topics, config: IngestConfig
    ) -> None:
        self.config = config
        self.topics = topics
        self.stats = IngestStats()
        self.store = IngestStore(
            engine,
            topics=topics,
            keep_payload_bytes=config.keep_payload_bytes,
            max_future_skew=timedelta(seconds=config.max_future_skew_s),
        )
        self._queue: queue.Queue[Received] = queue.Queue(maxsize=config.queue_size)
        self._stopping = threading.Event()
        self._writer: threading.Thread | None = None
        self._abandon = False
        self._dead_written = False
        self.started_at = time.monotonic()
        self.connection = MqttConnection(
            options,
            subscriptions=topics.agent_subscriptions(share_group=config.share_group),
            sink=self._enqueue,
        )

    def start(self) -> IngestService:
        """Start the writer thread, then connect."""
        self._stopping.clear()
        self._abandon = False
        self.started_at = time.monotonic()
        self._writer = threading.Thread(target=self._run, name="ingest-writer", daemon=True)
        self._writer.start()
        self.connection.start()
        return self

    def stop(self, timeout: float = 30.0, *, drain: bool = True) -> None:
        """Disconnect, then let the writer store what is queued (``drain=False``: leave it).

        Without draining, queued messages are neither stored nor acknowledged,
        so the broker redelivers them to the next session (a fast shutdown that
        behaves like a crash and loses nothing).
        """
        self._abandon = not drain
        self._stopping.set()
        self.connection.stop()
        if self._writer is not None:
            self._writer.join(timeout)
            self._writer = None

    def _enqueue(self, message: Received) -> None:
        self.stats.received += 1
        self.stats.last_received = time.monotonic()
        # Back-pressure: a full queue blocks the network thread (the broker then
        # holds further messages). While stopping, give up instead: the message
        # is not acknowledged, so the broker redelivers it to the next session.
        while not self._stopping.is_set():
            try:
                self._queue.put(message, timeout=0.5)
                return
            except queue.Full:
                continue
        self.stats.received -= 1  # left to the broker's redelivery

    def _run(self) -> None:
        next_prune = time.monotonic() + self.config.prune_every_s
        next_dead_prune = 0.0
        while not (self._stopping.is_set() and (self._abandon or self._queue.empty())):
            batch = self._next_batch()
            if batch:
                self._write_until_stored(batch)
            now = time.monotonic()
            if self._dead_written and now >= next_dead_prune:
                next_dead_prune = now + self.config.dead_letter_prune_every_s
                self._prune_dead_letters()
            if now >= next_prune:
                next_prune = now + self.config.prune_every_s
                self._prune()

    def _prune_dead_letters(self) -> None:
        """Keep the dead-letter table within its row and byte bounds (counters stay exact)."""
        self._dead_written = False
        try:
            removed = self.store.prune_dead_letters(
                max_rows=self.config.dead_letter_max_rows,
                max_bytes=self.config.dead_letter_max_bytes,
            )
        except Exception:  # housekeeping; ingest goes on, the next dead letter retries
            logger.exception("pruning dead letters failed")
            self._dead_written = True
            return
        if removed:
            logger.info("removed the %d oldest dead letters (retention bound)", removed)

    def _prune(self) -> None:
        before = utcnow() - timedelta(seconds=self.config.ledger_retention_s)
        try:
            removed = self.store.prune_ledger(before=before)
        except Exception:  # pruning is housekeeping; ingest goes on
            logger.exception("pruning the ingest ledger failed")
            return
        if removed:
            logger.info("pruned %d ingest-ledger entries older than %s", removed, before)

    def _next_batch(self) -> list[Received]:
        try:
            first = self._queue.get(timeout=0.1)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.config.flush_interval_s
        while len(batch) < self.config.batch_size:
            remaining = deadline - time.monotonic()
            try:
                batch.append(
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
        return batch

    def _write_until_stored(self, batch: list[Received]) -> None:
        delay = 0.5
        while True:
            started = time.perf_counter()
            try:
                outcome = self.store.write(batch)
            except OperationalError as exc:
                self.stats.write_retries += 1
                logger.warning("database unavailable (%s); retrying in %.1fs", exc.orig, delay)
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            except Exception:
                # a bug must not kill the writer; the batch stays unacknowledged for redelivery
                logger.exception("unexpected error storing a batch of %d; retrying", len(batch))
                self.stats.write_retries += 1
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            self._record(outcome, time.perf_counter() - started)
            for message in batch:
                self.connection.ack(message.mid, message.qos, message.generation)
            self._confirm(outcome.handled)
            return

    def _confirm(self, handled: dict[str, set[int]]) -> None:
        """Tell each device which of its seqs are stored, so its outbox may forget them."""
        for device_id, seqs in handled.items():
            ranges = seq_ranges(seqs)
            topic = self.topics.device(device_id, TopicKind.STORED)
            for start in range(0, len(ranges), MAX_STORED_RANGES):
                body = StoredBody(seqs=ranges[start : start + MAX_STORED_RANGES])
                if self.connection.notify(topic, encode(make_envelope(device_id, 0, body))):
                    self.stats.confirmations += 1

    def _record(self, outcome: Outcome, seconds: float) -> None:
        self.stats.stored += outcome.stored
        self.stats.duplicates += outcome.duplicates
        self.stats.dead_letters.update(outcome.dead)
        if outcome.dead:
            self._dead_written = True
        self.stats.batches += 1
        self.stats.last_batch_seconds = seconds
