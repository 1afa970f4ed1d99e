"""Which path reaches a device: its chat URL over HTTP, or the MQTT link it opened.

``auto`` takes HTTP where the device reported a chat URL the gateway may follow (the
shorter path). A device whose URL refuses a connection stays on MQTT for ``http_retry_s``
before HTTP is tried again; the request itself goes over MQTT at once (the user has seen
nothing) unless HTTP had worked for that device: then a refused connect more likely means
the device just died, and the request fails over to another device without waiting for
a dead device's MQTT acceptance. The answer says which
path it took: ``edgefleet.transport`` is ``http`` or ``mqtt``.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from controller.gateway.mqtt_upstream import LinkClient
from controller.gateway.routing import Route
from controller.gateway.settings import GatewaySettings
from controller.gateway.upstream import (
    DeviceClient,
    DeviceStream,
    DeviceUnreachable,
    data_of,
)

T = TypeVar("T")
HTTP, MQTT = "http", "mqtt"


class Transports:
    """The gateway's one way to call a device, whichever path it takes."""

    def __init__(
        self, settings: GatewaySettings, http: DeviceClient, link: LinkClient | None
    ) -> None:
        self.settings, self.http, self.link = settings, http, link
        self._http_down_until: dict[str, float] = {}
        self._http_worked: set[str] = set()

    def path_for(self, route: Route) -> str:
        """The path the next request to ``route`` takes first."""
        mode = self.settings.transport if self.link is not None else HTTP
        if mode != "auto":
            return mode
        if route.chat_url is None:
            return MQTT
        until = self._http_down_until.get(route.device_id)
        if until is not None and time.monotonic() < until:
            return MQTT
        self._http_down_until.pop(route.device_id, None)
        return HTTP

    async def complete(self, route: Route, body: dict[str, Any]) -> dict[str, Any]:
        """A whole answer, tagged with the path it took."""
        answer, path = await self._call(route, body, self.http.complete, _link_complete)
        return _tagged(answer, path)

    async def stream(self, route: Route, body: dict[str, Any]) -> DeviceStream:
        """A stream up to its first token; its final chunk tagged with the path it took."""
        stream, path = await self._call(route, body, self.http.stream, _link_stream)
        stream.head = [_tag_line(line, path) for line in stream.head]
        stream.rest = _tag_lines(stream.rest, path)
        return stream

    async def _call(
        self,
        route: Route,
        body: dict[str, Any],
        over_http: Callable[[Route, dict[str, Any]], Awaitable[T]],
        over_link: Callable[[LinkClient, Route, dict[str, Any]], Awaitable[T]],
    ) -> tuple[T, str]:
        path = self.path_for(route)
        if path == HTTP or self.link is None:
            try:
                answer = await over_http(route, body)
            except DeviceUnreachable:
                if self.settings.transport != "auto" or self.link is None:
                    raise
                self._http_down_until[route.device_id] = (
                    time.monotonic() + self.settings.http_retry_s
                )
                if route.device_id in self._http_worked:
                    self._http_worked.discard(route.device_id)
                    raise
            else:
                self._http_worked.add(route.device_id)
                return answer, HTTP
        return await over_link(self.link, route, body), MQTT

    async def aclose(self) -> None:
        """Close the HTTP connections (the link is stopped by its owner)."""
        await self.http.aclose()


async def _link_complete(link: LinkClient, route: Route, body: dict[str, Any]) -> dict[str, Any]:
    return await link.complete(route, body)


async def _link_stream(link: LinkClient, route: Route, body: dict[str, Any]) -> DeviceStream:
    return await link.stream(route, body)


def _tagged(payload: dict[str, Any], path: str) -> dict[str, Any]:
    extension = payload.get("edgefleet")
    payload["edgefleet"] = {**(extension if isinstance(extension, dict) else {}), "transport": path}
    return payload


def _tag_line(line: str, path: str) -> str:
    """A ``data:`` line carrying the ``edgefleet`` extension (the last chunk), tagged."""
    data = data_of(line)
    if data is None or "edgefleet" not in data:
        return line
    return "data: " + json.dumps(_tagged(data, path))


async def _tag_lines(lines: AsyncIterator[str], path: str) -> AsyncIterator[str]:
    async for line in lines:
        yield _tag_line(line, path)
