"""What the composition root hands to request handlers (``app.state.edgefleet``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.engine import Engine

from controller.models import Command
from controller.registry.store import ModelStore
from shared.messages import AnyCommand

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from controller.core.security import TokenAuthenticator
    from controller.enrollment import Enrollment
    from controller.registry.devices import DeviceCredentialCheck


class CommandSender(Protocol):
    """Records and delivers one command to one device (``CommandPublisher`` in production)."""

    def send(
        self,
        *,
        device_id: str,
        command: AnyCommand,
        created_by: str | None = None,
        plan_id: int | None = None,
    ) -> Command:
        """Record and publish; raise LookupError for an unknown device."""
        ...


class StatsSource(Protocol):
    """Ingest counters (``IngestService.stats``)."""

    stored: int


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
    ingest_stats: StatsSource | None = None
    metrics: CollectorRegistry | None = field(default=None, repr=False)
    runtime: Any = None

    def sender(self) -> CommandSender | None:
        """The injected sender, else the running controller's publisher, if any."""
        if self.command_sender is not None:
            return self.command_sender
        return getattr(self.runtime, "commands", None)

    def stats(self) -> StatsSource | None:
        """The injected ingest counters, else the running ingest's."""
        if self.ingest_stats is not None:
            return self.ingest_stats
        return getattr(getattr(self.runtime, "ingest", None), "stats", None)
