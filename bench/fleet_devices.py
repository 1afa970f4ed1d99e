"""Simulated devices for ``bench/fleet_sim.py``: one asyncio MQTT client (aiomqtt) per device.

Each device logs in with its own enrolled login, sets its last will (state
offline, retained), publishes hello and state online (retained), then
heartbeats and metrics on jittered timers, sometimes a bench result, and
acknowledges every command on its ``cmd`` topic. With churn, a device drops
its connection without DISCONNECT (power cut: the broker publishes its will),
stays away a while and comes back. Every publish the broker acknowledged
(PUBACK) is recorded as ``(device_id, seq)``, so the caller can compare what
was sent with what the controller stored; a will counts once it fired.
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import aiomqtt

from shared.messages import (
    AckBody,
    AckStatus,
    Body,
    DeviceStatus,
    Envelope,
    HeartbeatBody,
    MetricsBody,
    StateBody,
    encode,
    make_envelope,
    parse_message,
)
from shared.topics import TopicKind, Topics
from tests.factories.messages import bench_body, hello_body


@dataclass(frozen=True)
class SimDevice:
    """One simulated device: its id, class and MQTT login (from the enrollment API)."""

    device_id: str
    device_class: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class Timers:
    """How often devices report, how they churn, how long the run lasts."""

    heartbeat_s: float = 30.0
    metrics_s: float = 60.0
    bench_probability: float = 0.05
    churn_per_hour: float = 2.0
    offline_s: float = 20.0
    ramp_s: float = 30.0
    run_s: float = 120.0
    models: tuple[str, ...] = ("m-small", "m-big")
    seq_base: int = 0
    """Where this run's seqs start (a second run over the same devices continues above it)."""


@dataclass
class Tally:
    """What one worker process's devices got acknowledged, and what it saw."""

    acked: list[tuple[str, int]] = field(default_factory=list)
    wills: int = 0
    connects: int = 0
    connect_failures: int = 0
    publish_failures: int = 0
    commands: int = 0


class _Device:
    """The life of one device: connect, report, ack, churn; reconnect until the run ends."""

    def __init__(self, spec: SimDevice, host: str, port: int, timers: Timers, tally: Tally):
        self.spec, self.host, self.port, self.timers, self.tally = spec, host, port, timers, tally
        self.topics = Topics()
        self.seq = timers.seq_base
        self.rng = random.Random(spec.device_id)

    def _next(self, body: Body) -> tuple[int, bytes]:
        self.seq += 1
        return self.seq, encode(make_envelope(self.spec.device_id, self.seq, body))

    async def _publish(self, client: aiomqtt.Client, kind: TopicKind, body: Body) -> None:
        seq, payload = self._next(body)
        retain = kind in (TopicKind.HELLO, TopicKind.STATE)
        topic = self.topics.device(self.spec.device_id, kind)
        await client.publish(topic, payload, qos=1, retain=retain, timeout=60)
        self.tally.acked.append((self.spec.device_id, seq))

    async def live(self, deadline: float) -> None:
        """Connect (again) until ``deadline``; each session ends in a churn or the deadline."""
        await asyncio.sleep(self.rng.uniform(0, self.timers.ramp_s))
        while time.monotonic() < deadline:
            will_seq, will = self._next(StateBody(status=DeviceStatus.OFFLINE))
            try:
                dropped = await self._session(will, deadline)
            except aiomqtt.MqttError:
                self.tally.connect_failures += 1
                await asyncio.sleep(self.rng.uniform(1, 5))
                continue
            if dropped:  # cut off without DISCONNECT: the broker publishes the will
                self.tally.wills += 1
                self.tally.acked.append((self.spec.device_id, will_seq))
                await asyncio.sleep(self.rng.expovariate(1 / self.timers.offline_s))

    async def _session(self, will: bytes, deadline: float) -> bool:
        """One connection; True when it ended in a simulated power cut."""
        device_id = self.spec.device_id
        state_topic = self.topics.device(device_id, TopicKind.STATE)
        client = aiomqtt.Client(
            self.host, self.port, identifier=device_id, username=device_id,
            password=self.spec.password, keepalive=120, timeout=60, clean_session=False,
            will=aiomqtt.Will(state_topic, will, qos=1, retain=True),
        )  # fmt: skip
        churn_rate = self.timers.churn_per_hour / 3600
        online_until = deadline
        if churn_rate > 0:
            online_until = min(deadline, time.monotonic() + self.rng.expovariate(churn_rate))
        async with client:
            self.tally.connects += 1
            await client.subscribe(self.topics.device(device_id, TopicKind.CMD), qos=1)
            await self._publish(client, TopicKind.HELLO, hello_body(self.spec.device_class))
            await self._publish(client, TopicKind.STATE, StateBody(status=DeviceStatus.ONLINE))
            acks = asyncio.create_task(self._answer_commands(client))
            try:
                await self._report(client, online_until)
            finally:
                acks.cancel()
            if online_until < deadline:
                client._client.socket().shutdown(socket.SHUT_RDWR)  # noqa: SLF001 (power cut)
                return True
            await self._publish(client, TopicKind.STATE, StateBody(status=DeviceStatus.OFFLINE))
        return False

    async def _report(self, client: aiomqtt.Client, until: float) -> None:
        timers = self.timers
        if self.rng.random() < timers.bench_probability:
            model = self.rng.choice(timers.models)
            body = bench_body(model, self.spec.device_class).model_copy(
                update={"run_id": f"sim-run-{self.seq + 1}"}  # one run id per bench result
            )
            await self._publish(client, TopicKind.BENCH, body)
        next_heartbeat = time.monotonic() + self.rng.uniform(0, timers.heartbeat_s)
        next_metrics = time.monotonic() + self.rng.uniform(0, timers.metrics_s)
        while (now := time.monotonic()) < until:
            if now >= next_heartbeat:
                next_heartbeat += timers.heartbeat_s
                body: Body = HeartbeatBody(
                    uptime_s=now, load_1m=self.rng.uniform(0, 2), mem_available_mb=900
                )
                await self._publish(client, TopicKind.HEARTBEAT, body)
            if now >= next_metrics:
                next_metrics += timers.metrics_s
                requests = self.rng.randint(0, 20)
                body = MetricsBody(
                    window_s=timers.metrics_s, requests=requests, generated_tokens=requests * 90
                )
                await self._publish(client, TopicKind.METRICS, body)
            await asyncio.sleep(max(0.0, min(next_heartbeat, next_metrics, until) - now))

    async def _answer_commands(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = message.payload
            assert isinstance(payload, bytes)
            envelope: Envelope[Any] = parse_message(str(message.topic), payload, topics=self.topics)
            self.tally.commands += 1
            ack = AckBody(command_id=envelope.body.command.command_id, status=AckStatus.OK)
            await self._publish(client, TopicKind.ACK, ack)


def run_worker(
    devices: list[SimDevice], host: str, port: int, timers: Timers, results: Any
) -> None:
    """A worker process: run its devices until the run ends, then put its :class:`Tally`."""
    tally = Tally()

    async def main() -> None:
        deadline = time.monotonic() + timers.ramp_s + timers.run_s
        lives = [_Device(d, host, port, timers, tally).live(deadline) for d in devices]
        await asyncio.gather(*lives, return_exceptions=True)

    asyncio.run(main())
    results.put(tally)
