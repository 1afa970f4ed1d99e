"""The end users' chat page (``shared.webchat``) served by the device for its own model."""

from __future__ import annotations

from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from shared.webchat import CHAT_ASSETS, SECURITY_HEADERS


class ChatPageFiles(StaticFiles):
    """The page's files, each with the strict security headers (no inline script, no CDN)."""

    def __init__(self) -> None:
        super().__init__(directory=CHAT_ASSETS, html=True)

    async def get_response(self, path: str, scope: Scope) -> Response:
        """The file (or index.html), with :data:`SECURITY_HEADERS` added."""
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        return response
