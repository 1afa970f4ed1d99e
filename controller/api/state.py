"""What the composition root hands to request handlers (``app.state.edgefleet``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.engine import Engine

from controller.registry.store import ModelStore
from shared.messages import CmdBody
from shared.profiles import DeviceProfile

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from controller.core.security import Principal


class CommandSender(Protocol):
    """Delivers one command to one device (the MQTT publisher in production)."""

    def send(self, device_id: str, body: CmdBody) -> None:
        """Queue ``body`` for ``device_id``; raise on a delivery failure it can detect."""


class TokenAuthenticator(Protocol):
    """Turns a presented API token into a principal."""

    def authenticate(self, token: str) -> Principal | None:
        """The principal for ``token``, or None if unknown or revoked."""


@dataclass
class AppState:
    """The app's wired parts; built once by ``create_app``."""

    settings: Any
    engine: Engine
    store: ModelStore
    tokens: TokenAuthenticator
    profiles: dict[str, DeviceProfile]
    command_sender: CommandSender | None = None
    public_url: str | None = None
    metrics: CollectorRegistry | None = field(default=None, repr=False)
