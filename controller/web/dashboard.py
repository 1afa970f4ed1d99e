"""Serve the dashboard: static files under ``/dashboard`` with strict security headers.

The page holds no data and needs no token to load; every data call it makes
goes to ``/api/v1`` with the operator's bearer token, which the page keeps in
the tab's ``sessionStorage`` (never in a URL, a cookie or a log). No inline
script and no third-party origin: the policy (``shared.webchat``, shared with the
chat page) forbids both, so an injected string in device data can never run.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from shared.webchat import CHAT_ASSETS, CHAT_PATH, SECURITY_HEADERS

STATIC_DIR = Path(__file__).parent / "static"
DASHBOARD_PATH = "/dashboard"


class DashboardFiles(StaticFiles):
    """Static files that always carry the pages' security headers."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        """The file (or index.html), with :data:`SECURITY_HEADERS` added."""
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        return response


def mount_dashboard(app: FastAPI) -> None:
    """Serve the dashboard at ``/dashboard/`` (``/`` goes there) and the chat page at ``/chat/``."""

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse(f"{DASHBOARD_PATH}/", headers=SECURITY_HEADERS)

    app.mount(DASHBOARD_PATH, DashboardFiles(directory=STATIC_DIR, html=True), name="dashboard")
    # The end users' chat page, over the gateway.
    app.mount(CHAT_PATH, DashboardFiles(directory=CHAT_ASSETS, html=True), name="chat")
