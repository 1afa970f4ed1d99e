"""Chat with a device over the MQTT link it opened: for devices the gateway cannot dial.

A request goes out on the device's ``chat-request`` topic with a fresh correlation id; the
device's answer comes back as numbered chunks of its chat API's HTTP response on its own
``chat-reply`` topic's sub-topic for this replica, ``chat-reply/<replica-id>`` (see
:mod:`shared.chat_link`): each controller replica subscribes to its own replies only, so
none hears another's answers. The replica id is the link's MQTT client id, which the
broker already keeps unique (a second connection with it takes the first one's place).
The outcome is the HTTP upstream's: the same :class:`DeviceStream` and exceptions, so
failover, relay and accounting do not know which path an answer took. A reply whose
correlation id belongs to a request sent to another device is a forgery (the broker's ACL
should have stopped it): ignored, counted.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from prometheus_client import CollectorRegistry
from prometheus_client import Counter as PromCounter
from pydantic import ValidationError

from controller.gateway.routing import Route
from controller.gateway.settings import GatewaySettings
from controller.gateway.upstream import (
    DeviceBusy,
    DeviceFailed,
    DeviceStream,
    DeviceUnreachable,
    RequestRefused,
    completion_of,
    first_token,
    outcome_of,
)
from controller.ingest.mqtt import MqttConnection, MqttOptions, Received
from shared.chat_link import MAX_REPLY_BYTES, MAX_REQUEST_BYTES, LinkReply, LinkRequest
from shared.topics import TopicError, TopicKind, Topics

logger = logging.getLogger(__name__)

MAX_ANSWER_CHARS = 4 * 1024 * 1024
"""A whole answer over MQTT; a device sending more has failed."""
MAX_PENDING_CHUNKS = 4096
"""Reply chunks held for one request (out of order or not yet read)."""


@dataclass
class _Pending:
    """One request in flight: which device must answer, and its chunks so far."""

    device_id: str
    loop: asyncio.AbstractEventLoop
    chunks: asyncio.Queue[LinkReply] = field(default_factory=asyncio.Queue)


class LinkClient:
    """The gateway's MQTT client: publishes chat requests, routes replies to their waiters."""

    def __init__(
        self,
        options: MqttOptions,
        topics: Topics,
        settings: GatewaySettings,
        registry: CollectorRegistry,
    ) -> None:
        self.topics, self.settings = topics, settings
        self.replica_id = options.client_id
        try:
            replies = topics.chat_replies(self.replica_id)
        except TopicError as exc:
            raise TopicError(f"the gateway's MQTT client id names its reply topic: {exc}") from None
        self.connection = MqttConnection(options, subscriptions=[replies], sink=self._received)
        self._pending: dict[str, _Pending] = {}
        self.open: Counter[str] = Counter()
        self.ignored = PromCounter(
            "edgefleet_gateway_mqtt_replies_ignored",
            "Chat reply chunks over MQTT the gateway ignored: forged (a correlation id sent "
            "to another device), unknown (no request waits: late), malformed.",
            ["reason"],
            registry=registry,
        )
        for reason in ("forged", "unknown", "malformed"):
            self.ignored.labels(reason)  # exported as 0 before the first

    def start(self) -> None:
        """Connect in the background."""
        self.connection.start()

    def stop(self) -> None:
        """Disconnect; requests in flight time out and fail over."""
        self.connection.stop()

    async def complete(self, route: Route, body: dict[str, Any]) -> dict[str, Any]:
        """A whole answer from the device, over MQTT."""
        async with self._request(route, body | {"stream": False}) as replies:
            status, retry_after, first = await replies.first()
            parts = [first.data]
            ended, size = first.end, len(first.data)
            while not ended:
                chunk = await replies.next()
                parts.append(chunk.data)
                size += len(chunk.data)
                if size > MAX_ANSWER_CHARS:
                    raise DeviceFailed("answered more than the gateway takes")
                ended = chunk.end
        text = "".join(parts)
        if status != 200:
            raise outcome_of(status, text, retry_after)
        return completion_of(text)

    async def stream(self, route: Route, body: dict[str, Any]) -> DeviceStream:
        """Open the device's stream over MQTT and read it up to its first token."""
        request = self._request(route, body | {"stream": True})
        replies = await request.__aenter__()
        try:
            status, retry_after, first = await replies.first()
            if status != 200:
                text = first.data
                while not (first.end or len(text) > MAX_ANSWER_CHARS):
                    first = await replies.next()
                    text += first.data
                raise outcome_of(status, text, retry_after)
            lines = replies.lines(first)
            head: list[str] = []
            async for line in lines:
                head.append(line)
                if first_token(line):
                    return DeviceStream(route, head, lines, _Closer(request))
            raise DeviceFailed("the stream ended before the first token")
        except httpx.HTTPError as exc:
            await request.__aexit__(None, None, None)
            raise DeviceFailed(type(exc).__name__) from None
        except BaseException:
            await request.__aexit__(None, None, None)
            raise

    def _request(self, route: Route, body: dict[str, Any]) -> _Request:
        return _Request(self, route, body)

    def _received(self, message: Received) -> None:
        """A reply chunk (network thread): to its request's queue, or ignored and counted."""
        self.connection.ack(message.mid, message.qos, message.generation)
        try:
            parsed = self.topics.parse(message.topic)
            # a replica id is only ever parsed off a chat-reply topic
            if parsed.replica_id != self.replica_id or len(message.payload) > MAX_REPLY_BYTES:
                raise ValueError("not a chat reply to this replica")
            reply = LinkReply.model_validate_json(message.payload)
        except (TopicError, ValueError, ValidationError):
            self.ignored.labels("malformed").inc()
            return
        pending = self._pending.get(reply.id)
        if pending is None:
            self.ignored.labels("unknown").inc()
            return
        if pending.device_id != parsed.device_id:
            self.ignored.labels("forged").inc()
            logger.warning(
                "gateway: %s sent a chat reply for a request to %s; ignored",
                parsed.device_id,
                pending.device_id,
            )
            return
        pending.loop.call_soon_threadsafe(_offer, pending.chunks, reply)

    def cancel(self, route: Route, correlation: str) -> None:
        """Tell the device its answer has no reader any more (QoS 0, no wait).

        It stops generating at its next step, as when an HTTP client disconnects.
        """
        notice = LinkRequest(id=correlation, reply_to=self.reply_to(route.device_id), cancel=True)
        topic = self.topics.device(route.device_id, TopicKind.CHAT_REQUEST)
        self.connection.notify(topic, notice.model_dump_json().encode())

    def reply_to(self, device_id: str) -> str:
        """Where ``device_id`` answers this replica."""
        return self.topics.chat_reply(device_id, self.replica_id)

    def _publish(self, route: Route, request: LinkRequest, payload: bytes) -> bool:
        properties = None
        if self.connection.is_v5:
            properties = Properties(PacketTypes.PUBLISH)
            properties.ResponseTopic = request.reply_to
            properties.CorrelationData = request.id.encode()
        topic = self.topics.device(route.device_id, TopicKind.CHAT_REQUEST)
        timeout = self.settings.connect_timeout_s
        return self.connection.publish(topic, payload, timeout=timeout, properties=properties)


def _offer(chunks: asyncio.Queue[LinkReply], reply: LinkReply) -> None:
    if chunks.qsize() < MAX_PENDING_CHUNKS:
        chunks.put_nowait(reply)


class _Request:
    """One chat request over MQTT, from publishing it until its answer is read or dropped."""

    def __init__(self, link: LinkClient, route: Route, body: dict[str, Any]) -> None:
        self.link, self.route, self.body = link, route, body
        self.id = secrets.token_urlsafe(16)
        self._entered = self._left = False
        self.replies: _Replies | None = None

    async def __aenter__(self) -> _Replies:
        link, device = self.link, self.route.device_id
        if link.open[device] >= link.settings.mqtt_max_inflight_per_device:
            raise DeviceBusy(1.0)
        if not link.connection.connected.is_set():
            raise DeviceFailed("the gateway is not connected to the broker")
        token = link.settings.device_token
        request = LinkRequest(
            id=self.id,
            reply_to=link.reply_to(device),
            authorization=f"Bearer {token.get_secret_value()}" if token else None,
            body=self.body,
        )
        payload = request.model_dump_json().encode()
        if len(payload) > MAX_REQUEST_BYTES:  # no device over MQTT would take it
            raise RequestRefused(413, f"the request is over {MAX_REQUEST_BYTES} bytes")
        pending = _Pending(device, asyncio.get_running_loop())
        link._pending[self.id] = pending
        link.open[device] += 1
        self._entered = True
        try:
            published = await anyio.to_thread.run_sync(link._publish, self.route, request, payload)
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        if not published:
            await self.__aexit__(None, None, None)
            raise DeviceFailed("the broker did not take the chat request")
        settings = link.settings
        self.replies = _Replies(
            pending.chunks, settings.connect_timeout_s, settings.first_token_timeout_s
        )
        return self.replies

    async def __aexit__(self, *_: object) -> None:
        if self._entered and not self._left:
            self._left = True
            self.link._pending.pop(self.id, None)
            self.link.open[self.route.device_id] -= 1
            if self.replies is not None and not self.replies.ended:
                self.link.cancel(self.route, self.id)


class _Closer:
    """The :class:`DeviceStream` ``response`` of a stream over MQTT."""

    def __init__(self, request: _Request) -> None:
        self._request = request

    async def aclose(self) -> None:
        await self._request.__aexit__(None, None, None)


class _Replies:
    """A request's reply chunks in order.

    The acceptance within ``accept_s``, then each within ``silence_s`` of the one before.
    """

    def __init__(self, chunks: asyncio.Queue[LinkReply], accept_s: float, silence_s: float) -> None:
        self._chunks, self._accept_s, self._silence_s = chunks, accept_s, silence_s
        self._next_seq = 0
        self._early: dict[int, LinkReply] = {}
        self.ended = False

    async def first(self) -> tuple[int, str | None, LinkReply]:
        """The first chunk, with the status (and Retry-After) of the device's answer.

        A device that does not say within ``accept_s`` that the request arrived is not on
        the link (gone, or its last will not seen yet): unreachable, as a refused connect.
        """
        try:
            await self.next(self._accept_s)
        except httpx.ReadTimeout:
            raise DeviceUnreachable("the device did not take the request over MQTT") from None
        try:
            chunk = await self.next()
        except httpx.ReadTimeout:
            raise DeviceFailed("no answer over MQTT in time") from None
        if chunk.status is None:
            raise DeviceFailed("the first reply chunk had no status")
        return chunk.status, chunk.retry_after, chunk

    async def next(self, within_s: float | None = None) -> LinkReply:
        """The next chunk by ``seq`` (duplicates dropped).

        A silence too long is a read timeout, as over HTTP, so the relay cuts it the same way.
        """
        if self.ended:
            raise httpx.ReadError("the answer already ended")
        while self._next_seq not in self._early:
            try:
                with anyio.fail_after(within_s or self._silence_s):
                    chunk = await self._chunks.get()
            except TimeoutError:
                raise httpx.ReadTimeout("the device went silent over MQTT") from None
            if chunk.seq >= self._next_seq:
                self._early[chunk.seq] = chunk
        chunk = self._early.pop(self._next_seq)
        self._next_seq += 1
        self.ended = chunk.end
        return chunk

    async def lines(self, first: LinkReply) -> AsyncIterator[str]:
        """The answer's server-sent-event lines, whole, as their chunks arrive."""
        buffer, chunk = "", first
        while True:
            buffer += chunk.data
            *whole, buffer = buffer.split("\n")
            for line in whole:
                yield line
            if chunk.end:
                break
            chunk = await self.next()
        if buffer:
            yield buffer
