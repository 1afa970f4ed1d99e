"""The gateway reaches a device over its MQTT link: a real agent (tiny model) on Mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from agent.daemon import Agent
from controller.broker.embedded import EmbeddedBroker
from controller.gateway.mqtt_upstream import LinkClient
from controller.gateway.relay import Relay
from controller.gateway.routing import Route
from controller.gateway.settings import GatewaySettings
from controller.gateway.transport import Transports
from controller.gateway.upstream import (
    DeviceBusy,
    DeviceClient,
    DeviceFailed,
    DeviceUnreachable,
    RequestRefused,
    content_of,
    data_of,
)
from controller.ingest.mqtt import MqttOptions
from shared.chat_link import MAX_REQUEST_BYTES, LinkReply, LinkRequest
from shared.topics import TopicError, TopicKind, Topics
from tests.agent.daemon_support import make_agent
from tests.controller.devices import FakeDevice, wait_until
from tests.support.broker import MosquittoBroker
from tests.support.ports import free_port

pytestmark = pytest.mark.timeout(120)
_clients = itertools.count()
QUESTION = {"messages": [{"role": "user", "content": "what is water"}], "max_tokens": 6}


@pytest.fixture(scope="module")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoBroker]:
    """This module's own broker: its agents leave retained hello and state messages that a
    later test's ingest on the session's broker would store and count as its own."""
    broker = MosquittoBroker(tmp_path_factory.mktemp("gateway-mqtt-broker")).start()
    yield broker
    broker.stop()


@pytest.fixture
def agent(tmp_path: Path, tiny_gguf: Path, mosquitto: MosquittoBroker) -> Iterator[Agent]:
    agent = make_agent(
        tmp_path,
        mosquitto.port,
        device_id="pi-nat",
        chat_enabled=True,
        chat_port=0,
        initial_model=str(tiny_gguf),
        chat_mqtt_concurrent=2,
    )
    agent.start()
    assert agent.link.wait_connected(20) and agent.host.serving is not None
    yield agent
    agent.stop()


def _transports(
    port: int, client_id: str | None = None, **settings: Any
) -> tuple[Transports, LinkClient, CollectorRegistry]:
    """A gateway replica's transports; its link's client id is its replica id."""
    gateway = GatewaySettings(**settings)
    registry = CollectorRegistry()
    client_id = client_id or f"gw-test-{next(_clients)}"
    options = MqttOptions(host="127.0.0.1", port=port, client_id=client_id, session_expiry_s=0)
    link = LinkClient(options, Topics(), gateway, registry)
    link.start()
    assert link.connection.wait_connected(10)
    return Transports(gateway, DeviceClient(gateway), link), link, registry


def _route(agent: Agent, chat_url: str | None) -> Route:
    assert agent.host.serving is not None
    return Route(agent.settings.device_id, agent.host.serving.model_id, chat_url, None)


def _reply_as(device: FakeDevice, link: LinkClient, reply: LinkReply) -> None:
    """``device`` answers on its own chat-reply topic for ``link``'s replica."""
    topic = link.reply_to(device.device_id)
    device.client.publish(topic, reply.model_dump_json().encode(), qos=1).wait_for_publish(5)


async def _streamed(transports: Transports, route: Route) -> list[dict[str, Any]]:
    stream = await transports.stream(route, QUESTION | {"stream": True})
    try:
        return [d async for line in stream.lines() if (d := data_of(line)) is not None]
    finally:
        await stream.response.aclose()


def test_a_device_without_a_reachable_chat_url_answers_over_mqtt_streamed_and_not(
    agent: Agent, mosquitto: MosquittoBroker
) -> None:
    transports, link, _ = _transports(mosquitto.port)
    closed = f"http://127.0.0.1:{free_port()}"  # advertised, but nothing listens

    async def scenario() -> None:
        for url in (None, closed):
            answer = await transports.complete(_route(agent, url), dict(QUESTION))
            assert content_of(answer) and answer["edgefleet"]["transport"] == "mqtt"
            assert answer["usage"]["completion_tokens"] == 6
        chunks = await _streamed(transports, _route(agent, closed))
        assert "".join(content_of(c) for c in chunks)
        assert chunks[-1]["edgefleet"]["transport"] == "mqtt"
        assert chunks[-1]["choices"][0]["finish_reason"] == "length"
        # a device whose URL answers (a gateway that has not seen it refuse) goes over HTTP
        fresh = Transports(transports.settings, DeviceClient(transports.settings), link)
        assert agent.chat is not None
        direct = await fresh.complete(_route(agent, agent.chat.url), dict(QUESTION))
        assert direct["edgefleet"]["transport"] == "http"
        # where HTTP worked, a refused connect is a failure (fail over now), then MQTT
        with pytest.raises(DeviceUnreachable):
            await fresh.complete(_route(agent, closed), dict(QUESTION))
        again = await fresh.complete(_route(agent, closed), dict(QUESTION))
        assert again["edgefleet"]["transport"] == "mqtt"
        await transports.aclose()
        await fresh.aclose()

    try:
        asyncio.run(scenario())
        # the closed URL stays on MQTT for http_retry_s: HTTP was not retried in between
        assert transports.path_for(_route(agent, closed)) == "mqtt"
        assert link.open[agent.settings.device_id] == 0
    finally:
        link.stop()


def test_the_agent_applies_its_own_bearer_check_over_mqtt(
    tmp_path: Path, tiny_gguf: Path, mosquitto: MosquittoBroker
) -> None:
    agent = make_agent(
        tmp_path, mosquitto.port, device_id="pi-auth", chat_enabled=True, chat_port=0,
        initial_model=str(tiny_gguf), chat_token="device-secret-123",
    )  # fmt: skip
    agent.start()
    transports, link, _ = _transports(mosquitto.port, transport="mqtt")
    good, _, _ = _transports(mosquitto.port, transport="mqtt", device_token="device-secret-123")
    try:
        assert agent.link.wait_connected(20)

        async def scenario() -> None:
            with pytest.raises(DeviceFailed, match="401"):
                await transports.complete(_route(agent, None), dict(QUESTION))
            answer = await good.complete(_route(agent, None), dict(QUESTION))
            assert answer["edgefleet"]["transport"] == "mqtt"

        asyncio.run(scenario())
    finally:
        link.stop()
        assert good.link is not None
        good.link.stop()
        agent.stop()


def test_a_forged_reply_is_ignored_and_counted_and_a_device_off_the_link_is_unreachable(
    mosquitto: MosquittoBroker,
) -> None:
    transports, link, registry = _transports(
        mosquitto.port, transport="mqtt", connect_timeout_s=2.0
    )
    forger = FakeDevice("pi-forger", mosquitto.port)
    route = Route("pi-silent", "m", None, None)

    async def scenario() -> None:
        call = asyncio.ensure_future(transports.complete(route, dict(QUESTION)))
        while not link._pending:
            await asyncio.sleep(0.01)
        (correlation,) = link._pending
        for seq in (0, 1):  # its acceptance, then an answer
            reply = LinkReply(id=correlation, seq=seq, status=200, data='{"choices": []}')
            _reply_as(forger, link, reply)
        with pytest.raises(DeviceUnreachable, match="did not take the request"):
            await call

    try:
        asyncio.run(scenario())
        forged = {"reason": "forged"}
        ignored = registry.get_sample_value("edgefleet_gateway_mqtt_replies_ignored_total", forged)
        assert ignored == 2
    finally:
        forger.close()
        link.stop()


def test_the_gateway_bounds_its_open_requests_per_device_over_mqtt(
    mosquitto: MosquittoBroker,
) -> None:
    transports, link, _ = _transports(
        mosquitto.port, transport="mqtt", connect_timeout_s=1.0, mqtt_max_inflight_per_device=1
    )
    route = Route("pi-slow", "m", None, None)

    async def scenario() -> None:
        first = asyncio.ensure_future(transports.complete(route, dict(QUESTION)))
        while not link._pending:
            await asyncio.sleep(0.01)
        with pytest.raises(DeviceBusy):
            await transports.complete(route, dict(QUESTION))
        with pytest.raises(DeviceFailed):
            await first
        huge = {"messages": [{"role": "user", "content": "x" * MAX_REQUEST_BYTES}]}
        with pytest.raises(RequestRefused) as refused:  # the caller's to fix: no failover
            await transports.complete(route, huge)
        assert refused.value.status == 413

    try:
        asyncio.run(scenario())
        assert link.open["pi-slow"] == 0
    finally:
        link.stop()


def test_over_mqtt_a_full_device_says_busy_by_its_queue_and_by_its_mqtt_bound(
    agent: Agent, mosquitto: MosquittoBroker
) -> None:
    """The agent's own 429s reach the gateway as busy, with the device's Retry-After."""
    transports, link, _ = _transports(mosquitto.port, transport="mqtt")
    route = _route(agent, None)

    async def scenario() -> None:
        with agent.host.paused():  # admitted requests wait: two fill chat_mqtt_concurrent
            waiting = [
                asyncio.ensure_future(transports.complete(route, dict(QUESTION))) for _ in range(2)
            ]
            while agent.host.admitted < 2:
                await asyncio.sleep(0.01)
            with pytest.raises(DeviceBusy):
                await transports.complete(route, dict(QUESTION))
        answers = await asyncio.gather(*waiting)
        assert all(a["edgefleet"]["transport"] == "mqtt" for a in answers)
        with contextlib.ExitStack() as places:  # every queue place taken: the app's 429
            for _ in range(agent.host.capacity + agent.host.queue_size):
                places.enter_context(agent.host.admission())
            with pytest.raises(DeviceBusy) as busy:
                await transports.complete(route, dict(QUESTION))
            assert busy.value.retry_after_s >= 1

    try:
        asyncio.run(scenario())
    finally:
        link.stop()


def test_a_device_silent_mid_stream_is_cut_by_the_relay_as_over_http(
    mosquitto: MosquittoBroker,
) -> None:
    """A device (a real MQTT client speaking the protocol) sends its first token, then
    nothing: the relay ends the stream with an error, no ``[DONE]``, reported as cut."""
    transports, link, _ = _transports(mosquitto.port, transport="mqtt", first_token_timeout_s=1)
    mute = FakeDevice("pi-mute", mosquitto.port)
    route = Route("pi-mute", "m", None, None)
    ended: list[dict[str, Any] | None] = []

    async def scenario() -> list[str]:
        opening = asyncio.ensure_future(transports.stream(route, dict(QUESTION)))
        while not link._pending:
            await asyncio.sleep(0.01)
        (correlation,) = link._pending
        token = {"choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": None}]}
        for reply in (
            LinkReply(id=correlation, seq=0),
            LinkReply(id=correlation, seq=1, status=200, data=f"data: {json.dumps(token)}\n\n"),
        ):
            _reply_as(mute, link, reply)
        relay = Relay(await opening, on_end=lambda final, _text, _handover: ended.append(final))
        return [line async for line in relay.lines()]

    try:
        lines = asyncio.run(scenario())
    finally:
        mute.close()
        link.stop()
    events = [line for line in lines if line.startswith("data: ")]
    assert "Hel" in events[0] and "[DONE]" not in "".join(events)
    assert "failed mid-answer" in events[-1]
    assert ended == [None] and link.open["pi-mute"] == 0


def test_over_the_embedded_broker_mqtt_3_1_1_carries_the_request_in_the_payload(
    tmp_path: Path, tiny_gguf: Path
) -> None:
    """amqtt speaks 3.1.1 only: no response-topic or correlation properties on the wire."""
    broker = EmbeddedBroker(port=free_port()).start()
    agent = make_agent(
        tmp_path, broker.port, device_id="pi-old-broker", chat_enabled=True, chat_port=0,
        initial_model=str(tiny_gguf), mqtt_protocol="3.1.1",
    )  # fmt: skip
    agent.start()
    gateway = GatewaySettings(transport="mqtt")
    options = MqttOptions(host="127.0.0.1", port=broker.port, protocol="3.1.1", client_id="gw-311")
    link = LinkClient(options, Topics(), gateway, CollectorRegistry())
    link.start()
    try:
        assert agent.link.wait_connected(20) and link.connection.wait_connected(10)
        transports = Transports(gateway, DeviceClient(gateway), link)

        async def scenario() -> tuple[dict[str, Any], list[dict[str, Any]]]:
            whole = await transports.complete(_route(agent, None), dict(QUESTION))
            return whole, await _streamed(transports, _route(agent, None))

        whole, chunks = asyncio.run(scenario())
        assert content_of(whole) and whole["edgefleet"]["transport"] == "mqtt"
        assert chunks[-1]["edgefleet"]["transport"] == "mqtt"
    finally:
        link.stop()
        agent.stop()
        broker.stop()


def test_a_stream_closed_by_the_gateway_stops_the_device_generating(
    tmp_path: Path, tiny_gguf_factory: Callable[..., Path], mosquitto: MosquittoBroker
) -> None:
    """As an HTTP client's disconnect does: the agent frees the sequence at its next step."""
    slow = tiny_gguf_factory("m-slow", n_embd=512, n_layers=8, n_ff=1024)  # ~100 tok/s
    agent = make_agent(
        tmp_path, mosquitto.port, device_id="pi-cancel", chat_enabled=True, chat_port=0,
        initial_model=str(slow), chat_max_tokens=2048,
    )  # fmt: skip
    agent.start()
    transports, link, _ = _transports(mosquitto.port, transport="mqtt")
    long = {"messages": [{"role": "user", "content": "Tell me a story"}], "max_tokens": 2000}
    try:
        assert agent.link.wait_connected(20)
        agent.metrics.report(None)  # start a fresh window

        async def scenario() -> float:
            stream = await transports.stream(_route(agent, None), long | {"stream": True})
            assert agent.host.admitted == 1
            await stream.response.aclose()
            closed = time.monotonic()
            while agent.host.admitted and time.monotonic() - closed < 30:
                await asyncio.sleep(0.02)
            return time.monotonic() - closed

        freed_after = asyncio.run(scenario())
        assert agent.host.admitted == 0
        assert freed_after < 3, f"freed {freed_after:.1f} s after the gateway left"
        window = agent.metrics.report(None)
        assert window.requests == 0  # cut short, not answered to the end
    finally:
        link.stop()
        agent.stop()


class _Listener:
    """A plain MQTT client on the test broker (no ACLs): records what crosses a filter."""

    def __init__(self, port: int, topic_filter: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, f"listener-{next(_clients)}", protocol=mqtt.MQTTv5
        )
        subscribed = threading.Event()
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, m.payload))
        self.client.on_subscribe = lambda c, u, mid, codes, p: subscribed.set()
        self.client.on_connect = lambda c, u, f, reason, p: c.subscribe(topic_filter, qos=1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert subscribed.wait(10)

    def replies(self) -> list[tuple[str, LinkReply]]:
        """The chat reply chunks seen, with their topics (other messages skipped)."""
        seen = []
        for topic, payload in list(self.messages):
            with contextlib.suppress(ValidationError):
                seen.append((topic, LinkReply.model_validate_json(payload)))
        return seen

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_each_controller_replica_hears_only_its_own_replies(
    agent: Agent, mosquitto: MosquittoBroker
) -> None:
    """Two replicas (links with their own client ids) ask one device at once, streamed and
    whole: each gets its answers, and neither link is handed a chunk of the other's."""
    everything = _Listener(mosquitto.port, Topics().subscription(TopicKind.CHAT_REPLY) + "/#")
    replicas = [_transports(mosquitto.port, name, transport="mqtt") for name in ("ctl-a", "ctl-b")]
    route = _route(agent, None)

    async def scenario() -> None:
        for _ in range(2):
            streams = await asyncio.gather(*(_streamed(t, route) for t, _, _ in replicas))
            for chunks in streams:
                assert "".join(content_of(c) for c in chunks)
                assert chunks[-1]["edgefleet"]["transport"] == "mqtt"
            asks = (t.complete(route, dict(QUESTION)) for t, _, _ in replicas)
            for answer in await asyncio.gather(*asks):
                assert content_of(answer) and answer["edgefleet"]["transport"] == "mqtt"

    try:
        asyncio.run(scenario())
        for _, link, registry in replicas:
            for reason in ("unknown", "forged", "malformed"):
                ignored = registry.get_sample_value(
                    "edgefleet_gateway_mqtt_replies_ignored_total", {"reason": reason}
                )
                assert ignored == 0, f"{link.replica_id} was handed {ignored} {reason} chunks"
            assert not link._pending and link.open[route.device_id] == 0
        per_topic = Counter(topic for topic, _ in everything.replies())
        own = {link.replica_id: link.reply_to(route.device_id) for _, link, _ in replicas}
        assert set(per_topic) == set(own.values()), per_topic  # none on the plain topic
        assert all(n >= 2 * 4 for n in per_topic.values())  # 4 answers each: 2 chunks or more
    finally:
        everything.close()
        for _, link, _ in replicas:
            link.stop()


def test_the_agent_answers_only_on_its_own_reply_topics(
    agent: Agent, mosquitto: MosquittoBroker, caplog: pytest.LogCaptureFixture
) -> None:
    """A reply topic outside the device's chat-reply topic and its replica sub-topics is
    refused with a log line, and nothing is sent; the agent goes on answering. The plain
    chat-reply topic (a controller that names no replica) is still answered."""
    caplog.set_level(logging.WARNING, logger="agent.chat.over_mqtt")
    topics, device = Topics(), agent.settings.device_id
    own = topics.chat_reply(device)
    outside = [
        topics.chat_reply("pi-other"),
        topics.chat_reply("pi-other", "ctl-a"),
        topics.device(device, TopicKind.CHAT_REQUEST),
        topics.device(device, TopicKind.STATE),
        Topics("elsewhere/v1").chat_reply(device, "ctl-a"),
        own + "/",
        own + "/ctl+a",
        own + "/#",
        own + "/ctl-a/deeper",
        own + "/" + "r" * 65,
        own + "/ctl-a\n",
    ]
    answered = [topics.chat_reply(device, "ctl.a_1-x"), own]
    everything = _Listener(mosquitto.port, "#")
    asker = _Listener(mosquitto.port, "unused/+")
    request_topic = topics.device(device, TopicKind.CHAT_REQUEST)
    ids = {}
    for n, reply_to in enumerate(outside + answered):
        ids[reply_to] = f"request-{n:04d}"
        request = LinkRequest(id=ids[reply_to], reply_to=reply_to, body=dict(QUESTION))
        asker.client.publish(request_topic, request.model_dump_json().encode(), qos=1)

    def ended() -> bool:
        return {r.id for _, r in everything.replies() if r.end} >= {ids[t] for t in answered}

    try:
        assert wait_until(ended, 60)
        replies = everything.replies()
        for reply_to in answered:
            mine = [r for topic, r in replies if r.id == ids[reply_to]]
            assert {topic for topic, r in replies if r.id == ids[reply_to]} == {reply_to}
            assert [r.seq for r in mine] == list(range(len(mine))) and mine[1].status == 200
        assert not {r.id for _, r in replies} & {ids[t] for t in outside}
        assert agent.chat_over_mqtt is not None
        assert agent.chat_over_mqtt.refused == len(outside)
        refusals = [r.getMessage() for r in caplog.records if "refused: reply_to" in r.message]
        assert len(refusals) == len(outside)
        for reply_to, line in zip(outside, refusals, strict=True):
            assert repr(reply_to) in line and f"{own}/<replica-id>" in line
    finally:
        everything.close()
        asker.close()


@pytest.mark.parametrize("client_id", ["ctl/a", "ctl+a", "ctl#", "c" * 65])
def test_a_gateway_client_id_that_cannot_name_a_reply_topic_is_refused(client_id: str) -> None:
    options = MqttOptions(host="127.0.0.1", port=free_port(), client_id=client_id)
    with pytest.raises(TopicError, match="client id names its reply topic: invalid replica id"):
        LinkClient(options, Topics(), GatewaySettings(), CollectorRegistry())
