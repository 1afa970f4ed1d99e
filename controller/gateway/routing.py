"""Which device answers: the least loaded of those serving the model (pure, no I/O).

The shortest queue first: the device with the fewest requests the gateway has open on it;
among equals, the fastest by measured answer latency (its latest serving-metrics p50).
Queue length leads because it corrects itself: a slow box finishes later, keeps its
requests longer and so gets fewer, while a latency measured once (a cold first answer)
would keep a box idle, and so unmeasured, for good. A device not yet measured counts as
fast as the fastest measured one, so a new box gets traffic.
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
    """Order ``routes`` by open requests, then latency; set apart those at ``max_inflight``."""
    measured = [r.latency_ms for r in routes if r.latency_ms is not None]
    assumed = min(measured) if measured else UNMEASURED_LATENCY_MS

    def load(route: Route) -> tuple[int, float, str]:
        latency = assumed if route.latency_ms is None else route.latency_ms
        return (inflight.get(route.device_id, 0), latency, route.device_id)

    ordered = sorted(routes, key=load)
    return Ranking(
        open=[r for r in ordered if inflight.get(r.device_id, 0) < max_inflight],
        full=[r for r in ordered if inflight.get(r.device_id, 0) >= max_inflight],
    )
