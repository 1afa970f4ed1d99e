"""Which device answers: the least loaded of those serving the model (pure, no I/O).

Load is the expected wait at a device: the requests the gateway already has open on it,
plus this one, times the device's measured answer latency (its latest serving-metrics
p50). A device not yet measured is assumed as fast as the fastest measured one, so a new
box gets traffic and is measured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

UNMEASURED_LATENCY_MS = 1000.0
"""The latency assumed when no device serving the model has been measured yet."""


@dataclass(frozen=True)
class Route:
    """An online device serving a model, where its chat API listens, and how fast it answers."""

    device_id: str
    model_id: str
    chat_url: str
    latency_ms: float | None


@dataclass(frozen=True)
class Ranking:
    """Devices with room, best first; and those at the gateway's per-device bound."""

    open: list[Route]
    full: list[Route]

    def retry_after_s(self) -> float:
        """How long until a full device has likely answered one of its requests."""
        known = [r.latency_ms for r in self.full if r.latency_ms is not None]
        return (min(known) if known else UNMEASURED_LATENCY_MS) / 1000


def rank(routes: Sequence[Route], inflight: Mapping[str, int], *, max_inflight: int) -> Ranking:
    """Order ``routes`` by expected wait; set apart devices with ``max_inflight`` open."""
    measured = [r.latency_ms for r in routes if r.latency_ms is not None]
    assumed = min(measured) if measured else UNMEASURED_LATENCY_MS

    def wait(route: Route) -> tuple[float, str]:
        latency = assumed if route.latency_ms is None else route.latency_ms
        return ((inflight.get(route.device_id, 0) + 1) * latency, route.device_id)

    ordered = sorted(routes, key=wait)
    return Ranking(
        open=[r for r in ordered if inflight.get(r.device_id, 0) < max_inflight],
        full=[r for r in ordered if inflight.get(r.device_id, 0) >= max_inflight],
    )
