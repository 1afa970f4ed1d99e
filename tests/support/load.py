"""A device login publishing numbered QoS 1 heartbeats at a steady rate, counting PUBACKs.

What the broker acknowledged is what the device's outbox would drop, so
``acked`` is the set of seqs the fleet must never lose.
"""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from shared.messages import HeartbeatBody, encode, make_envelope
from shared.topics import TopicKind, Topics

BODY = HeartbeatBody(uptime_s=1, load_1m=0.1, mem_available_mb=100)


class LoadPublisher:
    """Publishes seqs ``first_seq, first_seq + 1, ...`` at ``rate`` per second until stopped."""

    def __init__(
        self,
        device_id: str,
        password: str,
        port: int,
        *,
        rate: float,
        first_seq: int = 1,
        host: str = "127.0.0.1",
        keepalive: int = 60,
        stop_on_error: bool = True,
    ) -> None:
        self.device_id = device_id
        self.rate = rate
        self.next_seq = first_seq
        self.sent: list[int] = []
        self._infos: list[tuple[int, mqtt.MQTTMessageInfo]] = []
        self._acked_mids: set[int] = set()
        """PUBACKed packet ids (info.is_published() raises for a message queued offline)."""
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._topic = Topics().device(device_id, TopicKind.HEARTBEAT)
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=device_id, protocol=mqtt.MQTTv311
        )
        self.client.username_pw_set(device_id, password)
        self.client.max_inflight_messages_set(1000)
        self.client.on_connect = lambda c, u, f, reason, p: (
            None if reason.is_failure else self._connected.set()
        )
        self.client.on_publish = lambda c, u, mid, reason, p: (
            None if reason.is_failure else self._acked_mids.add(mid)
        )
        self.stop_on_error = stop_on_error
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.client.connect(host, port, keepalive=keepalive)
        self.client.loop_start()
        if not self._connected.wait(15):
            raise AssertionError(f"{device_id} could not connect to {host}:{port}")
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> LoadPublisher:
        """Start publishing in the background."""
        self._thread.start()
        return self

    @property
    def acked(self) -> set[int]:
        """Seqs whose PUBACK has arrived."""
        return {seq for seq, info in list(self._infos) if info.mid in self._acked_mids}

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.is_set():
            due = int((time.monotonic() - started) * self.rate) + 1
            while len(self.sent) < due and not self._stop.is_set():
                seq = self.next_seq
                payload = encode(make_envelope(self.device_id, seq, BODY))
                info = self.client.publish(self._topic, payload, qos=1)
                if info.rc != mqtt.MQTT_ERR_SUCCESS and self.stop_on_error:
                    self._stop.set()
                    break
                self._infos.append((seq, info))
                self.sent.append(seq)
                self.next_seq += 1
            time.sleep(0.005)

    def drain(self, timeout: float) -> bool:
        """Stop publishing new messages; wait until every one sent is acknowledged."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(info.mid in self._acked_mids for _, info in list(self._infos)):
                return True
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        """Stop publishing and disconnect; ``acked`` no longer changes afterwards."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        self.client.disconnect()
        self.client.loop_stop()


def main() -> None:
    """Publish from another process (e.g. inside a network namespace); print counts as JSON."""
    import argparse
    import json

    parser = argparse.ArgumentParser()
    for name in ("device", "password", "host"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--drain", type=float, default=60.0)
    args = parser.parse_args()
    publisher = LoadPublisher(
        args.device, args.password, args.port, rate=args.rate, host=args.host,
        keepalive=5, stop_on_error=False,
    ).start()  # fmt: skip
    time.sleep(args.seconds)
    drained = publisher.drain(args.drain)
    publisher.stop()
    result = {"sent": publisher.sent, "acked": sorted(publisher.acked), "drained": drained}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
