"""Sending commands to devices: record the command, publish its ``cmd`` envelope, note the result.

The row is committed before publishing, so an ack can never arrive for a
command the database does not know; acks then move it on (see ``acks.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
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
        fence: Callable[[Session], None] | None = None,
    ) -> Command:
        """Record (``fence`` first, if given) and publish; LookupError for an unknown device."""
        ...

    def publish(self, row: Command) -> Command:
        """Publish a command already recorded (its sender died before publishing it)."""
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
        fence: Callable[[Session], None] | None = None,
    ) -> Command:
        """Record, publish at QoS 1 and return the command (status sent or publish_failed).

        ``fence`` runs in the recording transaction (the planner's lease check).
        The envelope is written in the version of the device's last hello, so an
        agent from before strategies still accepts it (and reads ``refine``).
        Raises LookupError for an unknown device and ValueError for a reused command id.
        """
        try:
            with session_scope(self.engine) as session:
                if fence is not None:
                    fence(session)
                row = crud.create_command(
                    session, device_id=device_id, command=command, created_by=created_by,
                    plan_id=plan_id,
                )  # fmt: skip
        except IntegrityError as exc:  # another replica recorded the same id a moment earlier
            raise ValueError(f"command id {command.command_id!r} is already used") from exc
        return self.publish(row)

    def publish(self, row: Command) -> Command:
        """Publish a recorded command with its seq and note the result.

        Also how a command recorded by a replica that died before publishing it
        goes out: same id and seq, so a device that did get it acks it again.
        """
        with Session(self.engine) as session:
            device = session.get(Device, row.device_id)
            version = min(SCHEMA_VERSION, (device and device.schema_version) or SCHEMA_VERSION)
        body = CmdBody.model_validate({"command": row.body})
        envelope = make_envelope(row.device_id, row.seq or 0, body, version=version)
        published = self.publisher.publish(
            self.topics.device(row.device_id, TopicKind.CMD), encode(envelope), qos=1
        )
        if not published:
            logger.warning(
                "command %s to %s was not acknowledged by the broker", row.id, row.device_id
            )
        with session_scope(self.engine) as session:
            crud.mark_command_published(session, command_id=row.id, published=published)
        with Session(self.engine) as session:
            fresh = session.get(Command, row.id)
        return fresh or row
