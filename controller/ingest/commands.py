"""Sending commands to devices: record the command, publish its ``cmd`` envelope, note the result.

The row is committed before publishing, so an ack can never arrive for a
command the database does not know; acks then move it on (see ``acks.py``).
"""

from __future__ import annotations

import logging
from typing import Protocol

from sqlalchemy import Engine
from sqlmodel import Session

from controller import crud
from controller.core.db import session_scope
from controller.models import Command, Device
from shared.messages import SCHEMA_VERSION, AnyCommand, CmdBody, encode, make_envelope
from shared.topics import TopicKind, Topics

logger = logging.getLogger(__name__)


class Publisher(Protocol):
    """What the command sender needs from an MQTT connection."""

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, timeout: float = 10.0) -> bool:
        """Publish; True when the broker acknowledged."""
        ...


class CommandSender(Protocol):
    """Records and delivers one command to one device (:class:`CommandPublisher` in production)."""

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


class CommandPublisher:
    """Records and publishes commands (the API and the planner call this)."""

    def __init__(self, engine: Engine, publisher: Publisher, *, topics: Topics) -> None:
        self.engine = engine
        self.publisher = publisher
        self.topics = topics

    def send(
        self,
        *,
        device_id: str,
        command: AnyCommand,
        created_by: str | None = None,
        plan_id: int | None = None,
    ) -> Command:
        """Record, publish at QoS 1 and return the command (status sent or publish_failed).

        The envelope is written in the version of the device's last hello, so an
        agent from before strategies still accepts it (and reads ``refine``).

        Raises LookupError for an unknown device and ValueError for a reused command id.
        """
        with session_scope(self.engine) as session:
            row = crud.create_command(
                session, device_id=device_id, command=command, created_by=created_by,
                plan_id=plan_id,
            )  # fmt: skip
            seq = row.seq or 0
            device = session.get(Device, device_id)
            version = min(SCHEMA_VERSION, (device and device.schema_version) or SCHEMA_VERSION)
        envelope = make_envelope(device_id, seq, CmdBody(command=command), version=version)
        published = self.publisher.publish(
            self.topics.device(device_id, TopicKind.CMD), encode(envelope), qos=1
        )
        if not published:
            logger.warning("command %s to %s was not acknowledged by the broker", row.id, device_id)
        with session_scope(self.engine) as session:
            crud.mark_command_published(session, command_id=row.id, published=published)
        with Session(self.engine) as session:
            fresh = session.get(Command, row.id)
        return fresh or row
