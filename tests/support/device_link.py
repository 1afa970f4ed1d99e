"""The agent's real link (outbox, messenger, MQTT link) publishing numbered heartbeats.

Unlike :mod:`tests.support.load` (a bare paho client), messages go through
the agent's own outbox, so what the broker acknowledged, what the
controller confirmed and what is still kept can all be counted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from pathlib import Path

from agent.config import AgentSettings, load_settings
from agent.link.messenger import Messenger
from agent.link.mqtt import MqttLink
from agent.link.outbox import Outbox, OutboxFull
from shared.messages import DeviceStatus, HeartbeatBody, StateBody, encode, make_envelope
from shared.topics import TopicKind, Topics

BODY = HeartbeatBody(uptime_s=1, load_1m=0.1, mem_available_mb=100)


class CountingOutbox(Outbox):
    """An outbox that remembers which seqs the broker and the controller acknowledged."""

    def __init__(self, path: Path, **kwargs: int) -> None:
        super().__init__(path, **kwargs)
        self.seq_of: dict[int, int] = {}
        self.broker_acked: set[int] = set()
        self.confirmed_seqs: set[int] = set()

    def remember(self, row_id: int, seq: int) -> None:
        """Note which seq a row carries."""
        self.seq_of[row_id] = seq

    def published(self, row_id: int) -> None:
        super().published(row_id)
        if row_id in self.seq_of:
            self.broker_acked.add(self.seq_of[row_id])

    def confirm(self, ranges: Iterable[tuple[int, int]]) -> int:
        ranges = list(ranges)
        for first, last in ranges:
            self.confirmed_seqs.update(range(first, last + 1))
        return super().confirm(ranges)


class DeviceLink:
    """One device's link; ``start_load`` queues heartbeats at ``rate`` per second."""

    def __init__(self, data_dir: Path, **settings: object) -> None:
        self.settings: AgentSettings = load_settings(
            None,
            device_class="dev-x86-1core",
            data_dir=str(data_dir),
            reconnect_min_s=0.2,
            reconnect_max_s=1.0,
            chat_enabled=False,
            gpio_mock=True,
            **settings,
        )
        self.outbox = CountingOutbox(
            self.settings.db_path,
            max_messages=self.settings.outbox_max_messages,
            max_unconfirmed=self.settings.outbox_max_unconfirmed,
        )
        self.messenger = Messenger(
            self.settings.device_id, self.outbox, Topics(self.settings.topic_prefix)
        )
        self.sent: list[int] = []
        self.refused = 0
        self.link: MqttLink | None = None
        self._stop_load = threading.Event()
        self._load: threading.Thread | None = None

    def connect(self) -> DeviceLink:
        """Start a fresh MQTT link over the same outbox (as an agent restart would)."""
        self.link = MqttLink(
            self.settings,
            self.outbox,
            on_command=lambda _envelope: None,
            will_payload=lambda: self.messenger.encode(StateBody(status=DeviceStatus.OFFLINE)),
        )
        self.messenger.sink = self.link
        self.link.start()
        return self

    def disconnect(self) -> None:
        """Stop the link at once (no flush), keeping the outbox."""
        if self.link is not None:
            self.link.stop(flush_s=0)
            self.link = None

    def send(self) -> int | None:
        """Queue one heartbeat; its seq (None when the outbox refused it)."""
        topic = self.messenger.topics.device(self.settings.device_id, TopicKind.HEARTBEAT)
        device = self.settings.device_id
        try:
            row_id, seq = self.outbox.put_sequenced(
                TopicKind.HEARTBEAT, topic, lambda s: encode(make_envelope(device, s, BODY))
            )
        except OutboxFull:
            self.refused += 1
            return None
        self.outbox.remember(row_id, seq)
        self.sent.append(seq)
        return seq

    def start_load(self, rate: float) -> DeviceLink:
        """Queue heartbeats at ``rate`` per second in the background."""
        self._stop_load.clear()
        self._load = threading.Thread(target=self._run, args=(rate,), daemon=True)
        self._load.start()
        return self

    def stop_load(self) -> None:
        """Stop queueing."""
        self._stop_load.set()
        if self._load is not None:
            self._load.join(10)

    def _run(self, rate: float) -> None:
        started, count = time.monotonic(), 0
        while not self._stop_load.is_set():
            due = int((time.monotonic() - started) * rate) + 1
            while count < due and not self._stop_load.is_set():
                self.send()
                count += 1
            time.sleep(0.005)

    def close(self) -> None:
        """Stop everything and close the outbox."""
        self.stop_load()
        self.disconnect()
        self.outbox.close()
