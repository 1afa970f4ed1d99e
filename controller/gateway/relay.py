"""A device's answer stream passed on to the client, and released exactly once at its end.

Past the first token no other device may answer (the user would get two answers), so a
device that fails now ends the stream with an error event and no ``[DONE]``. The end is
:meth:`Relay.finish`: called when the stream is exhausted, and again by the response
whatever happened (a client gone before the first byte leaves the stream never started).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import httpx

from controller.gateway.upstream import DeviceStream, content_of, data_of, tag_device

logger = logging.getLogger(__name__)

Ended = Callable[[dict[str, Any] | None, str], None]
"""Told the final chunk of a complete answer (None for one cut short) and the text sent;
called once."""


class Relay:
    """One device stream on its way to one client."""

    def __init__(self, stream: DeviceStream, *, on_end: Ended) -> None:
        self._stream, self._on_end = stream, on_end
        self._final: dict[str, Any] | None = None
        self._pieces: list[str] = []
        self._done = self._finished = False

    async def lines(self) -> AsyncIterator[str]:
        """The stream's lines, the last chunk tagged with the device that answered."""
        route = self._stream.route
        try:
            async for line in self._stream.lines():
                data = data_of(line)
                self._pieces.append(content_of(data))
                if data is not None and "edgefleet" in data:
                    self._final = tag_device(data, route.device_id)
                    line = "data: " + json.dumps(data)
                self._done = self._done or line.strip() == "data: [DONE]"
                yield line + "\n"
        except httpx.HTTPError as exc:
            logger.warning("gateway: %s failed mid-answer: %s", route.device_id, exc)
            failure = {"message": f"device {route.device_id} failed mid-answer", "code": 502}
            yield "data: " + json.dumps({"error": failure}) + "\n\n"
        finally:
            await self.finish()

    async def finish(self) -> None:
        """Close the device's stream and report the outcome, the first time only."""
        if self._finished:
            return
        self._finished = True
        with anyio.CancelScope(shield=True):
            await self._stream.aclose()
        self._on_end(self._final if self._done else None, "".join(self._pieces))
