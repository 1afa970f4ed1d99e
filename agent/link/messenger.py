"""Wraps bodies in envelopes with the persisted seq and routes them: outbox or retained."""

from __future__ import annotations

import logging
from typing import Protocol

from agent.link.outbox import Outbox, OutboxFull
from shared.messages import BODY_MODELS, Body, encode, make_envelope
from shared.topics import TopicKind, Topics

logger = logging.getLogger(__name__)


class RetainedSink(Protocol):
    """Where retained messages go (the MQTT link)."""

    def set_retained(self, kind: TopicKind, payload: bytes) -> None:
        """Publish now and on every reconnect."""


class Messenger:
    """The one place that stamps ``seq`` and decides outbox vs. retained."""

    def __init__(self, device_id: str, outbox: Outbox, topics: Topics) -> None:
        self.device_id = device_id
        self.outbox = outbox
        self.topics = topics
        self.sink: RetainedSink | None = None

    def encode(self, body: Body) -> bytes:
        """The wire bytes of ``body`` with the next seq."""
        return encode(make_envelope(self.device_id, self.outbox.next_seq(), body))

    def send(self, body: Body) -> int:
        """Queue a non-retained message in the outbox; return its seq."""
        kind = _kind_of(body)
        if kind.retained:
            raise ValueError(f"{kind.value} is retained; use retain()")
        _row, seq = self.outbox.put_sequenced(
            kind,
            self.topics.device(self.device_id, kind),
            lambda seq: encode(make_envelope(self.device_id, seq, body)),
        )
        logger.debug("queued %s seq=%d", kind.value, seq)
        return seq

    def retain(self, body: Body) -> None:
        """Set a retained topic (hello or state); republished on every reconnect."""
        kind = _kind_of(body)
        if not kind.retained:
            raise ValueError(f"{kind.value} is not retained; use send()")
        if self.sink is None:
            return
        try:
            payload = self.encode(body)
        except OutboxFull as exc:  # the next retain (or reconnect) sets it again
            logger.error("%s not published: %s", kind.value, exc)
            return
        self.sink.set_retained(kind, payload)


def _kind_of(body: Body) -> TopicKind:
    for kind, model in BODY_MODELS.items():
        if isinstance(body, model):
            return kind
    raise TypeError(f"{type(body).__name__} is not a message body")
