"""The broker the controller starts itself when no ``broker_url`` is configured.

Mosquitto, supervised, wherever it is installed (``local_broker: auto``, the
default): its persistence keeps what it acknowledged across a controller
crash. The embedded amqtt broker only where Mosquitto is missing, with a
warning, because everything queued in it dies with the controller's process.
"""

from __future__ import annotations

import logging
import shutil
import socket
from collections.abc import Callable
from typing import Protocol

from controller.broker.embedded import EmbeddedAuth, EmbeddedBroker
from controller.broker.mosquitto import Account, Listeners
from controller.broker.passwords import hash_password
from controller.broker.supervised import MosquittoSetup, SupervisedMosquitto
from controller.core.config import ControllerSettings
from controller.ingest.mqtt import MqttOptions

logger = logging.getLogger(__name__)

SYSTEM_DIRS = "/usr/sbin:/usr/local/sbin:/sbin"


class LocalBroker(Protocol):
    """What the runtime and enrollment need from a broker the controller owns."""

    def sync(self) -> bool:
        """Make the broker see the registry's current logins; False if it must be retried."""
        ...

    def stop(self) -> None:
        """Stop the broker."""
        ...


def free_port(host: str) -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def find_mosquitto(settings: ControllerSettings) -> str | None:
    """The Mosquitto executable to supervise, or None when it is not installed."""
    return shutil.which(settings.mosquitto_binary) or shutil.which(
        settings.mosquitto_binary, path=SYSTEM_DIRS
    )


def start_local_broker(
    settings: ControllerSettings,
    *,
    controller_password: str,
    accounts: Callable[[], list[Account]],
    client_id: str,
    session_expiry_s: int,
    keepalive_s: int,
) -> tuple[LocalBroker, MqttOptions]:
    """Start the configured local broker; how the controller's own client connects to it."""
    binary = find_mosquitto(settings) if settings.local_broker != "embedded" else None
    if settings.local_broker == "mosquitto" and binary is None:
        raise RuntimeError(
            f"local_broker is mosquitto but {settings.mosquitto_binary!r} is not installed "
            "(apt-get install mosquitto)"
        )
    host = settings.embedded_broker_host
    port = settings.embedded_broker_port or free_port(host)
    common = {
        "username": settings.mqtt_username,
        "password": controller_password,
        "client_id": client_id,
        "session_expiry_s": session_expiry_s,
        "keepalive_s": keepalive_s,
    }
    if binary is not None:
        listeners = Listeners(
            device_port=port,
            device_bind=host,
            controller_port=free_port("127.0.0.1"),
            controller_bind="127.0.0.1",
        )
        setup = MosquittoSetup(
            binary=binary,
            directory=settings.broker_dir,
            topics=settings.topics,
            controller_user=settings.mqtt_username,
            controller_password=controller_password,
            listeners=listeners,
            max_packet_bytes=settings.mqtt_max_packet_bytes,
        )
        broker = SupervisedMosquitto(setup, accounts).start()
        options = MqttOptions(
            host="127.0.0.1",
            port=listeners.controller_port,
            protocol=settings.mqtt_protocol or "5",
            **common,  # type: ignore[arg-type]
        )
        return broker, options
    why = (
        "local_broker is 'embedded'"
        if settings.local_broker == "embedded"
        else "Mosquitto is not installed"
    )
    logger.warning(
        "\n  edgefleet: %s, so the controller runs the embedded amqtt broker.\n  Messages it "
        "acknowledged but the controller has not stored yet are LOST if the controller "
        "crashes,\n  and it has no packet-size limit. Install Mosquitto (apt-get install "
        "mosquitto) and leave local_broker at auto for a broker that keeps them.\n",
        why,
    )
    auth = EmbeddedAuth(
        db_url=settings.db_url,
        controller_user=settings.mqtt_username,
        controller_password_hash=hash_password(controller_password),
        controller_client_id=client_id,
        topic_prefix=settings.topic_prefix,
        allow_anonymous=settings.embedded_broker_allow_anonymous,
    )
    embedded = EmbeddedBroker(host=host, port=port, auth=auth).start()
    options = MqttOptions(
        host=host,
        port=port,
        protocol=settings.mqtt_protocol or "3.1.1",
        **common,  # type: ignore[arg-type]
    )
    return embedded, options
