"""Doctor checks of what the agent talks to: the broker (its login, TLS too), the controller."""

from __future__ import annotations

import time

import httpx

from agent.config import AgentSettings
from agent.link.mqtt import try_login
from shared.doctor import CheckResult, broker_result, fail, ok, warn

TIMEOUT_S = 10.0
"""A reachable broker or controller answers on a LAN in well under a second; a busy
Pi Zero's TLS handshake takes a few."""


def check_broker(settings: AgentSettings) -> CheckResult:
    """Log in to the broker as the agent does (its login, its TLS settings)."""
    return broker_result(
        settings.broker_url,
        settings.mqtt_username,
        try_login(settings, timeout_s=TIMEOUT_S),
        "set mqtt_username/mqtt_password to the login the controller issued for this device",
    )


def check_controller(settings: AgentSettings) -> tuple[CheckResult, str | None, float]:
    """GET the controller's /healthz; also return its ``Date`` header and when it was read."""
    if not settings.controller_url:
        fix = "set controller_url, or the device cannot download models"
        return warn("controller", "controller_url is not set", fix), None, time.time()
    url = settings.controller_url.rstrip("/") + "/healthz"
    try:
        response = httpx.get(url, timeout=TIMEOUT_S, verify=_verify(settings))
    except httpx.HTTPError as exc:
        return (
            fail(
                "controller",
                f"cannot reach {url}: {exc}",
                "start the controller or correct controller_url",
            ),
            None,
            time.time(),
        )
    measured_at = time.time()
    date = response.headers.get("date")
    if response.status_code != 200:
        summary = f"{url} answered {response.status_code}"
        return fail("controller", summary, "see the controller's log"), date, measured_at
    return ok("controller", f"{url} answered 200"), date, measured_at


def _verify(settings: AgentSettings) -> bool | str:
    return str(settings.tls_ca_file) if settings.tls_ca_file else True
