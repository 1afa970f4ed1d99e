"""Simulated devices for controller tests: a real paho client publishing real envelopes."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from shared.messages import SCHEMA_VERSION, Body, encode, make_envelope
from shared.topics import TopicKind, Topics


class FakeDevice:
    """Publishes QoS 1 messages as one device would (seq rising from ``first_seq``)."""

    def __init__(
        self,
        device_id: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        protocol: int = mqtt.MQTTv5,
        first_seq: int = 1,
    ) -> None:
        self.device_id = device_id
        self.topics = Topics()
        self.seq = first_seq - 1
        self.refused: list[Any] = []
        # a device with a login connects as itself (brokers bind client ids to logins)
        client_id = device_id if username else f"dev-{device_id}"
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol
        )
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        if username:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish
        self.acked: set[int] = set()
        self._connected = False
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        deadline = time.monotonic() + 10
        while not self._connected and not self.refused and time.monotonic() < deadline:
            time.sleep(0.01)

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            self.refused.append(reason)
        else:
            self._connected = True

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        self.acked.add(mid)

    def wait_acked(self, infos: list[mqtt.MQTTMessageInfo], timeout: float = 60.0) -> bool:
        """Wait for the broker's PUBACK of every message, including ones paho queued while
        disconnected (their ``wait_for_publish`` raises, but paho resends them on reconnect)."""
        return wait_until(lambda: all(info.mid in self.acked for info in infos), timeout)

    def publish_body(
        self,
        body: Body,
        *,
        seq: int | None = None,
        sent_at: datetime | None = None,
        version: int = SCHEMA_VERSION,
    ) -> mqtt.MQTTMessageInfo:
        """Wrap ``body`` in an envelope (sent now, or at ``sent_at``) and publish it."""
        if seq is None:
            self.seq += 1
            seq = self.seq
        envelope = make_envelope(self.device_id, seq, body, sent_at=sent_at, version=version)
        return self.publish_raw(envelope.kind, encode(envelope))

    def publish_raw(
        self, kind: TopicKind | str, payload: bytes, *, device_id: str | None = None
    ) -> mqtt.MQTTMessageInfo:
        """Publish arbitrary bytes on a (possibly other) device's topic."""
        topic = self.topics.device(device_id or self.device_id, kind)
        return self.client.publish(topic, payload, qos=1, retain=False)

    def close(self) -> None:
        """Disconnect and stop the network loop."""
        self.client.disconnect()
        self.client.loop_stop()


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Poll ``condition`` until true or the timeout; returns the last result."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()
