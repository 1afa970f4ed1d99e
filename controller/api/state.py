"""What the composition root hands to request handlers (``app.state.edgefleet``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.engine import Engine

from controller.ingest.commands import CommandSender
from controller.ingest.health import IngestHealth, assess
from controller.registry.store import ModelStore

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from controller.core.security import TokenAuthenticator
    from controller.enrollment import Enrollment
    from controller.ingest.service import IngestService
    from controller.plans.wiring import Planning
    from controller.registry.devices import DeviceCredentialCheck

__all__ = ["AppState", "CommandSender", "StatsSource"]


class StatsSource(Protocol):
    """Ingest counters (``IngestService.stats``)."""

    stored: int
    confirmations: int


@dataclass
class AppState:
    """The app's wired parts; built once by ``create_app``."""

    settings: Any
    engine: Engine
    store: ModelStore
    tokens: TokenAuthenticator
    enrollment: Enrollment
    devices: DeviceCredentialCheck
    command_sender: CommandSender | None = None
    """None: this app has no MQTT connection, so routes that send answer 503."""
    planning: Planning | None = None
    """The plan applier and profiler over ``command_sender`` (None without one)."""
    ingest_stats: StatsSource | None = None
    ingest: IngestService | None = None
    """The running ingest, whose health ``/healthz`` reports (None: no ingest here)."""
    metrics: CollectorRegistry | None = field(default=None, repr=False)

    def ingest_health(self, devices_online: int) -> IngestHealth | None:
        """The running ingest's health, if this process runs ingest."""
        if self.ingest is None:
            return None
        return assess(
            self.ingest, devices_online=devices_online, silence_s=self.settings.ingest_silence_s
        )
