"""A bound on every request body, per route: 413 before the body is read whole.

A declared ``Content-Length`` over the limit is refused before anything is
read; a chunked body is counted as it streams and refused as soon as it
passes the limit (the route's own clean-up runs, as for any error).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from controller.api.errors import BodyTooLarge


class BodyLimit:
    """ASGI middleware: ``limits`` by exact path, ``default_bytes`` for every other route."""

    def __init__(self, app: ASGIApp, *, default_bytes: int, limits: Mapping[str, int]) -> None:
        self.app = app
        self.default_bytes = default_bytes
        self.limits = dict(limits)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse or count the body, then hand the request on."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.get(scope["path"], self.default_bytes)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _refuse(send, limit)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)


async def _refuse(send: Send, limit: int) -> None:
    body = json.dumps({"error": "body_too_large", "detail": BodyTooLarge(limit).detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": body})
