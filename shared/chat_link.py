"""The gateway's chat over MQTT: a request to one device, its answer back in chunks.

The controller publishes a :class:`LinkRequest` on the device's ``chat-request`` topic (only
that device may read it); the device answers with :class:`LinkReply` chunks on the reply
topic the request names, its own ``chat-reply`` topic's sub-topic for the asking controller
replica (only it may write there, only the controller read). The correlation id
and reply topic travel in the payload, so the embedded broker (MQTT 3.1.1) carries them
too; over MQTT 5 they are also set as the response-topic and correlation-data properties.
The reply chunks are the bytes of the HTTP response the device's own chat API gave.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MAX_REQUEST_BYTES = 256 * 1024
"""A chat request's payload: its messages, roughly a 64k-token context."""
CHUNK_CHARS = 16 * 1024
"""Answer text in one reply chunk; a longer piece is split."""
MAX_REPLY_BYTES = CHUNK_CHARS * 4 + 1024
"""A reply payload: one chunk, JSON-escaped at worst, plus its fields."""
CORRELATION_PATTERN = r"^[A-Za-z0-9_-]{8,64}$"


class LinkRequest(BaseModel):
    """One chat request for one device."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=CORRELATION_PATTERN, description="correlation id")
    reply_to: str = Field(
        max_length=512,
        description="the device's own chat-reply topic, or its sub-topic for the asking replica",
    )
    authorization: str | None = Field(None, max_length=1024, description="the bearer header")
    body: dict[str, Any] = Field(
        default_factory=dict, description="the OpenAI chat request, as over HTTP"
    )
    cancel: bool = Field(
        False, description="stop the request ``id`` (its reader left), as a closed connection"
    )


class LinkReply(BaseModel):
    """One chunk of a device's answer.

    ``seq`` 0 is sent on arrival, before any work (the gateway's sign that the device is
    on the link, as a connect is over HTTP); ``seq`` 1 carries the status; the last ``end``.
    """

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=CORRELATION_PATTERN)
    seq: int = Field(ge=0, le=1_000_000)
    status: int | None = Field(None, ge=100, le=599, description="on the first chunk")
    retry_after: str | None = Field(None, max_length=16)
    data: str = Field("", max_length=CHUNK_CHARS)
    end: bool = False


def chunks(text: str) -> list[str]:
    """``text`` in pieces of at most :data:`CHUNK_CHARS` (one empty piece for "")."""
    return [text[i : i + CHUNK_CHARS] for i in range(0, len(text), CHUNK_CHARS)] or [""]
