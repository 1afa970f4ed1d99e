"""A device's answer stream passed on to the client, and released exactly once at its end.

Past the first token no other device may start the answer again (the user would get two
answers), so a device that fails now hands over: another device continues the text sent
so far (:mod:`controller.gateway.continuation`) on the same stream, its chunks carrying
the first stream's id, its role chunk dropped. If no device can, or the continuing one
fails too, the stream ends with an error event and no ``[DONE]``. The end is
:meth:`Relay.finish`: called when the stream is exhausted, and again by the response
whatever happened (a client gone before the first byte leaves the stream never started).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import httpx

from controller.gateway.continuation import Handover
from controller.gateway.routing import Route
from controller.gateway.upstream import DeviceStream, content_of, data_of, tag_device

logger = logging.getLogger(__name__)

Ended = Callable[[dict[str, Any] | None, str, Handover | None], None]
"""Told the final chunk of a complete answer (None for one cut short), the text sent and
the handover if another device continued it; called once."""
HandOver = Callable[[Route, str, int], Awaitable[Handover | None]]
"""Asked, for the failed device, the text sent and its answer chunks, for a continuation."""


class Relay:
    """One answer on its way to one client, from one device or continued by a second."""

    def __init__(
        self,
        stream: DeviceStream,
        *,
        on_end: Ended,
        hand_over: HandOver | None = None,
        extension: dict[str, Any] | None = None,
    ) -> None:
        self._stream, self._on_end, self._hand_over = stream, on_end, hand_over
        self._extension = extension or {}
        self._handover: Handover | None = None
        self._final: dict[str, Any] | None = None
        self._pieces: list[str] = []
        self._id: Any = None
        self._done = self._finished = False

    async def lines(self) -> AsyncIterator[str]:
        """The stream's lines, the last chunk tagged with the device(s) that answered.

        The gateway's own ``extension`` fields (``auto``) join that chunk's ``edgefleet``.
        """
        try:
            try:
                async for line in self._relay(self._stream):
                    yield line
                return
            except httpx.HTTPError as exc:
                failed = self._stream.route
                logger.warning("gateway: %s failed mid-answer: %s", failed.device_id, exc)
            text = "".join(self._pieces)
            tokens = sum(1 for piece in self._pieces if piece)
            self._handover = (
                await self._hand_over(failed, text, tokens) if self._hand_over else None
            )
            if self._handover is None:
                yield _error(f"device {failed.device_id} failed mid-answer")
                return
            with anyio.CancelScope(shield=True):
                await self._stream.aclose()
            self._stream = self._handover.stream
            try:
                async for line in self._relay(self._stream):
                    yield line
            except httpx.HTTPError as exc:
                continuing = self._stream.route.device_id
                logger.warning("gateway: %s failed continuing: %s", continuing, exc)
                yield _error(f"devices {failed.device_id} and {continuing} failed mid-answer")
        finally:
            await self.finish()

    async def _relay(self, stream: DeviceStream) -> AsyncIterator[str]:
        """One device's lines; a continuation's role chunk dropped, its final chunk merged."""
        handover = self._handover
        async for line in stream.lines():
            data = data_of(line)
            if data is not None:
                if handover is None:
                    self._id = self._id or data.get("id")
                elif _role_only(data):
                    continue
                else:
                    data["id"] = self._id
                if "edgefleet" in data:
                    self._final = tag_device(data, stream.route.device_id)
                    data["edgefleet"].update(self._extension)
                    if handover is not None:
                        data["edgefleet"]["continued"] = handover.extension()
                        data["usage"] = handover.merged_usage(data)
                if handover is not None or data is self._final:
                    line = "data: " + json.dumps(data)
            self._pieces.append(content_of(data))
            self._done = self._done or line.strip() == "data: [DONE]"
            yield line + "\n"

    async def finish(self) -> None:
        """Close the device's stream and report the outcome, the first time only."""
        if self._finished:
            return
        self._finished = True
        with anyio.CancelScope(shield=True):
            await self._stream.aclose()
        self._on_end(self._final if self._done else None, "".join(self._pieces), self._handover)


def _error(message: str) -> str:
    return "data: " + json.dumps({"error": {"message": message, "code": 502}}) + "\n\n"


def _role_only(data: dict[str, Any]) -> bool:
    """Whether a chunk only opens the assistant's turn (a continuation's is dropped)."""
    choices = data.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else {}
    delta = choice.get("delta") if isinstance(choice, dict) else None
    return isinstance(delta, dict) and "role" in delta and not content_of(data)
