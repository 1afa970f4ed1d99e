"""Which device answers: the least loaded of those serving the model (pure, no I/O).

The shortest queue first: the requests the device last reported running or waiting (its
heartbeat's queue depth) plus those the gateway has open on it now (the report is up to a
heartbeat old, and other clients may use the device's chat API directly); among equals, the
fastest by measured answer latency (its latest serving-metrics p50).
Queue length leads because it corrects itself: a slow box finishes later, keeps its
requests longer and so gets fewer, while a latency measured once (a cold first answer)
would keep a box idle, and so unmeasured, for good. A device not yet measured counts as
fast as the fastest measured one, so a new box gets traffic. A conversation's next turn
goes before all that to the device that answered its previous turn (it holds the
conversation's prefix) while that device has room.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from controller.gateway.question_kind import QuestionKind

UNMEASURED_LATENCY_MS = 1000.0
"""The latency assumed when no device serving the model has been measured yet."""


@dataclass(frozen=True)
class Route:
    """An online device serving a model, where its chat API listens, and how fast it answers."""

    device_id: str
    model_id: str
    chat_url: str | None
    """None: the device reported no URL the gateway may follow (reached over MQTT only)."""
    latency_ms: float | None
    queued: int = 0
    """Requests the device reported running or waiting in its latest heartbeat (0: none)."""


@dataclass(frozen=True)
class Ranking:
    """Devices with room, best first; and those at the gateway's per-device bound."""

    open: list[Route]
    full: list[Route]

    def retry_after_s(self) -> float:
        """How long until a full device has likely answered one of its requests."""
        known = [r.latency_ms for r in self.full if r.latency_ms is not None]
        return (min(known) if known else UNMEASURED_LATENCY_MS) / 1000


def rank(
    routes: Sequence[Route],
    inflight: Mapping[str, int],
    *,
    max_inflight: int,
    prefer: str | None = None,
) -> Ranking:
    """Order ``routes`` by reported plus open requests, then latency; set some apart.

    Those set apart have ``max_inflight`` requests open from the gateway.

    ``prefer`` (the device of the conversation's previous turn) goes first if it has room.
    """
    measured = [r.latency_ms for r in routes if r.latency_ms is not None]
    assumed = min(measured) if measured else UNMEASURED_LATENCY_MS

    def load(route: Route) -> tuple[bool, int, float, str]:
        latency = assumed if route.latency_ms is None else route.latency_ms
        return (
            route.device_id != prefer,
            route.queued + inflight.get(route.device_id, 0),
            latency,
            route.device_id,
        )

    ordered = sorted(routes, key=load)
    return Ranking(
        open=[r for r in ordered if inflight.get(r.device_id, 0) < max_inflight],
        full=[r for r in ordered if inflight.get(r.device_id, 0) >= max_inflight],
    )


@dataclass(frozen=True)
class Sticky:
    """A later turn of a conversation, and the device that answered its previous turn."""

    previous: str | None
    """That device; None if the gateway does not remember it (evicted, restarted)."""
    miss: str | None
    """Why ``previous`` cannot take this turn: ``unknown`` (not remembered), ``gone``
    (offline, or serves another model now), ``full`` (at the bound); None if it can."""

    def outcome(self, chosen: str) -> str:
        """``hit`` if ``chosen`` is the previous device, else why not.

        The miss, or ``failed``: the previous device was tried and did not answer (it
        failed, or said it was busy).
        """
        if chosen == self.previous:
            return "hit"
        return self.miss or "failed"


def stick(
    previous: str | None,
    routes: Sequence[Route],
    inflight: Mapping[str, int],
    *,
    max_inflight: int,
) -> Sticky:
    """Whether a later turn can go to ``previous``, the device of its conversation's last turn."""
    if previous is None:
        return Sticky(None, "unknown")
    if previous not in {r.device_id for r in routes}:
        return Sticky(previous, "gone")
    return Sticky(previous, "full" if inflight.get(previous, 0) >= max_inflight else None)


@dataclass(frozen=True)
class AutoChoice:
    """The model ``auto`` picked (``auto_model``), the question's kind, and why."""

    model_id: str
    kind: QuestionKind
    reason: str

    def extension(self) -> dict[str, Any]:
        """The reply's ``edgefleet.auto``."""
        return {
            "kind": self.kind.category,
            "kind_reason": self.kind.reason,
            "model": self.model_id,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Placement:
    """The device that answered, and how it was chosen (``X-Edgefleet-Routing``)."""

    route: Route
    routing: str
    """``least-loaded`` (a first turn), ``sticky`` (the previous turn's device) or
    ``fallback-WHY`` (least loaded, because of the :attr:`Sticky.outcome` WHY)."""
    escalated_from: str | None = None
    """The device whose unsure answer was asked again here (``X-Edgefleet-Escalated-From``)."""
    auto: AutoChoice | None = None
    """For ``model: auto``: the model picked for the question's kind, and why."""
