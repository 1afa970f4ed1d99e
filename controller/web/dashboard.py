"""Serve the dashboard: static files under ``/dashboard`` with strict security headers.

The page holds no data and needs no token to load; every data call it makes
goes to ``/api/v1`` with the operator's bearer token, which the page keeps in
the tab's ``sessionStorage`` (never in a URL, a cookie or a log). No inline
script and no third-party origin: the policy below forbids both, so an
injected string in device data can never run.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).parent / "static"
DASHBOARD_PATH = "/dashboard"
CHAT_DIR = Path(__file__).parent / "chat"
CHAT_PATH = "/chat"
"""The end users' chat page: the same rules, and it calls only the gateway (``/v1``)."""

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    # Revalidate every load (a cheap 304), so an upgraded controller serves its new page.
    "Cache-Control": "no-cache",
}


class DashboardFiles(StaticFiles):
    """Static files that always carry the dashboard's security headers."""

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
    app.mount(CHAT_PATH, DashboardFiles(directory=CHAT_DIR, html=True), name="chat")
