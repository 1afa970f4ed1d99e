"""The end users' chat page and the security headers every served page carries.

One page for two hosts: the controller serves it at ``/chat/`` over its gateway, and each
agent's chat API serves it at ``/chat/`` over its own model (``agent`` never imports
``controller``, so it lives here). It calls only ``../v1`` (same origin) and signs in with
a bearer key kept in the tab's ``sessionStorage`` (never a URL, cookie or log). No inline
script and no third-party origin: the policy below forbids both, so an injected string in
a question or an answer can never run. Each host serves the files with these headers
(``shared`` imports no web framework).
"""

from __future__ import annotations

from pathlib import Path

CHAT_ASSETS = Path(__file__).parent / "assets"
CHAT_PATH = "/chat"

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
    # Revalidate every load (a cheap 304), so an upgraded server serves its new page.
    "Cache-Control": "no-cache",
}
