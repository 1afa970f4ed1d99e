"""The chat API answering over the MQTT link: for a gateway that cannot reach this device.

Each request runs through the same ASGI app as HTTP requests, in this process (same
bearer check, queue bounds and 429s); the response's bytes go back as they come, in
:class:`~shared.chat_link.LinkReply` chunks, so a stream stays a stream. At most
``max_concurrent`` requests run at once; more are answered 429 at once. The answer goes
to the reply topic the request names if it is this device's own: its ``chat-reply`` topic,
or that topic's sub-topic for the asking controller replica (anything else is refused
and logged: the broker would drop it, and a device publishes nowhere else).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from shared.chat_link import MAX_REQUEST_BYTES, LinkReply, LinkRequest, chunks
from shared.topics import REPLICA_ID_PATTERN, TopicError, TopicKind, Topics

logger = logging.getLogger(__name__)

CHAT_PATH = "/v1/chat/completions"
ASGIApp = Callable[..., Any]
Send = Callable[[str, str, bytes], None]
"""Publishes one reply payload on a reply topic (topic, correlation id, payload)."""


class MqttChatServer:
    """Runs chat requests from the link through ``app`` on a loop of its own."""

    def __init__(
        self, app: ASGIApp, topics: Topics, device_id: str, send: Send, max_concurrent: int
    ) -> None:
        self.app, self.topics, self.device_id, self.send = app, topics, device_id, send
        self.max_concurrent = max_concurrent
        self.refused = 0
        """Requests dropped: malformed, too big, or naming a reply topic not this device's."""
        self._running = 0
        self._leaving: dict[str, asyncio.Event] = {}
        """Set when the gateway cancels a request: the app sees its client disconnect."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="chat-mqtt", daemon=True
        )
        self._thread.start()

    def submit(self, payload: bytes) -> None:
        """Take one request payload (from the network thread; never blocks it)."""
        if len(payload) > MAX_REQUEST_BYTES:
            self.refused += 1
            logger.warning("chat request over MQTT of %d bytes refused", len(payload))
            return
        try:
            request = LinkRequest.model_validate_json(payload)
        except ValidationError as exc:
            self.refused += 1
            logger.warning("malformed chat request over MQTT: %s", exc.errors()[0]["msg"])
            return
        reply_topic = self._reply_topic(request.reply_to)
        if reply_topic is None:
            self.refused += 1
            own = self.topics.chat_reply(self.device_id)
            logger.warning(
                "chat request %s over MQTT refused: reply_to %r is not %s or %s/<replica-id> "
                "(replica id: %s)",
                request.id, request.reply_to, own, own, REPLICA_ID_PATTERN,
            )  # fmt: skip
            return
        if request.cancel:
            self._loop.call_soon_threadsafe(self._cancel, request.id)
            return
        asyncio.run_coroutine_threadsafe(self._answer(request, reply_topic), self._loop)

    def _reply_topic(self, reply_to: str) -> str | None:
        """The topic to answer on: ``reply_to`` if it is one of this device's chat-reply topics.

        Rebuilt from its parts, not echoed. None for any other topic.
        """
        try:
            parsed = self.topics.parse(reply_to)
        except TopicError:
            return None
        if parsed.device_id != self.device_id or parsed.kind != TopicKind.CHAT_REPLY:
            return None
        return self.topics.chat_reply(self.device_id, parsed.replica_id)

    def stop(self) -> None:
        """Stop the loop (requests under way end with it)."""
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def _cancel(self, correlation: str) -> None:
        leaving = self._leaving.get(correlation)
        if leaving is not None:
            leaving.set()

    async def _answer(self, request: LinkRequest, reply_topic: str) -> None:
        replies = _Replies(request.id, reply_topic, self.send)
        replies.accept()
        if self._running >= self.max_concurrent:
            error = {"error": {"message": "too many chat requests over MQTT", "code": 429}}
            replies.status(429, "1")
            replies.body(json.dumps(error), end=True)
            return
        self._running += 1
        try:
            await self._call_app(request, replies)
        except Exception:  # noqa: BLE001 - the gateway must hear of it, not wait
            logger.exception("chat request over MQTT failed")
            if not replies.answered:
                replies.status(500, None)
            replies.body("", end=True)
        finally:
            self._running -= 1

    async def _call_app(self, request: LinkRequest, replies: _Replies) -> None:
        body = json.dumps(request.body).encode()
        headers = [(b"content-type", b"application/json"), (b"host", b"mqtt")]
        if request.authorization:
            headers.append((b"authorization", request.authorization.encode()))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": CHAT_PATH,
            "raw_path": CHAT_PATH.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("mqtt", 0),
            "server": ("mqtt", 0),
        }
        sent = asyncio.Event()
        leaving = self._leaving[request.id] = asyncio.Event()

        async def receive() -> dict[str, Any]:
            if not sent.is_set():
                sent.set()
                return {"type": "http.request", "body": body, "more_body": False}
            await leaving.wait()  # the gateway cancelled, or the answer ended
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                fields = {k.decode().lower(): v.decode() for k, v in message.get("headers", [])}
                replies.status(int(message["status"]), fields.get("retry-after"))
            elif message["type"] == "http.response.body":
                more = bool(message.get("more_body", False))
                replies.body(message.get("body", b"").decode(errors="replace"), end=not more)

        try:
            await self.app(scope, receive, send)
        finally:
            leaving.set()
            self._leaving.pop(request.id, None)
        if not replies.ended:
            replies.body("", end=True)


class _Replies:
    """The reply chunks of one request, numbered from 0: the acceptance, then the answer."""

    def __init__(self, correlation: str, topic: str, send: Send) -> None:
        self.correlation, self.topic, self._send = correlation, topic, send
        self.seq = 0
        self.ended = self.answered = False
        self._status: tuple[int, str | None] | None = None

    def accept(self) -> None:
        """Say at once that the request arrived (the gateway's "connected"), before any work."""
        acceptance = LinkReply(id=self.correlation, seq=0).model_dump_json().encode()
        self._send(self.topic, self.correlation, acceptance)
        self.seq = 1

    def status(self, status: int, retry_after: str | None) -> None:
        self._status = (status, retry_after)

    def body(self, text: str, *, end: bool) -> None:
        pieces = chunks(text)
        for i, piece in enumerate(pieces):
            last = end and i == len(pieces) - 1
            status, retry = self._status if not self.answered and self._status else (None, None)
            reply = LinkReply(
                id=self.correlation, seq=self.seq, status=status, retry_after=retry,
                data=piece, end=last,
            )  # fmt: skip
            payload = reply.model_dump_json(exclude_none=True).encode()
            self._send(self.topic, self.correlation, payload)
            self.seq += 1
            self.answered = True
        self.ended = self.ended or end
