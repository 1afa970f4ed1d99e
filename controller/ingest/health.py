"""Whether ingest is really receiving: connected, its session its own, not silent.

Another client with the controller's client id shows as a takeover (MQTT 5
brokers that say so) or as a burst of lost connections (Mosquitto 2.0 just
closes the old connection; both clients then keep reconnecting).

A connection can look fine while nothing arrives (a client that took over
the controller's session, a broker that lost its subscriptions), so
``/healthz`` also degrades when devices are online but no message came for
longer than any of them stays quiet.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from controller.ingest.service import IngestService

DISCONNECT_GRACE_S = 10.0
"""A reconnect shorter than this (a broker restart) is not yet a degradation."""
TAKEOVER_MEMORY_S = 300.0
"""How long a session takeover keeps health degraded after ingest reconnected."""
FLAPPING_LOSSES = 3
FLAPPING_WINDOW_S = 60.0
"""This many lost connections within the window: something keeps taking the session."""

IngestStatus = Literal["ok", "disconnected", "taken_over", "flapping", "silent"]


@dataclass(frozen=True)
class IngestHealth:
    """Ingest's state for ``/healthz`` and ``/metrics``."""

    status: IngestStatus
    takeovers: int
    connection_losses: int
    seconds_since_message: float | None

    @property
    def ok(self) -> bool:
        """Whether ingest is healthy."""
        return self.status == "ok"


def assess(
    ingest: IngestService, *, devices_online: int, silence_s: float, now: float | None = None
) -> IngestHealth:
    """Ingest's health now (``now`` is a ``time.monotonic()`` value)."""
    now = time.monotonic() if now is None else now
    connection = ingest.connection
    last = ingest.stats.last_received
    since = None if last is None else now - last
    status: IngestStatus = "ok"
    down = connection.disconnected_since
    recent_losses = [t for t in connection.connection_losses if now - t < FLAPPING_WINDOW_S]
    if connection.last_takeover is not None and now - connection.last_takeover < TAKEOVER_MEMORY_S:
        status = "taken_over"
    elif len(recent_losses) >= FLAPPING_LOSSES:
        status = "flapping"
    elif down is not None and now - down > DISCONNECT_GRACE_S:
        status = "disconnected"
    elif devices_online > 0 and now - max(last or 0.0, ingest.started_at) > silence_s:
        status = "silent"
    return IngestHealth(
        status=status,
        takeovers=connection.takeovers,
        connection_losses=len(connection.connection_losses),
        seconds_since_message=since,
    )
