"""Plain database functions over the controller's tables (keyword-only arguments).

Callers own the session and the transaction; functions flush when a later
step needs generated ids or foreign keys, and never commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import case, or_, update
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from controller.models import (
    Command,
    CommandStatus,
    DeadLetter,
    DeadLetterCount,
    Device,
    DeviceClass,
    DeviceCreate,
    DeviceUpdate,
    MqttCredential,
    utcnow,
)
from shared.messages import AnyCommand
from shared.profiles import DeviceProfile, parse_profile

# --- device classes ----------------------------------------------------------


def upsert_device_class(session: Session, *, profile: DeviceProfile) -> DeviceClass:
    """Create or refresh a device class from a validated profile."""
    row = session.get(DeviceClass, profile.name)
    values = profile.model_dump(mode="json")
    columns = {k: values[k] for k in DeviceClass.model_fields if k in values}
    if row is None:
        row = DeviceClass(**columns, profile=values)
    else:
        for key, value in columns.items():
            setattr(row, key, value)
        row.profile = values
        row.updated_at = utcnow()
    session.add(row)
    session.flush()
    return row


def load_device_classes(session: Session, *, directory: Path) -> list[DeviceClass]:
    """Upsert every ``*.yaml`` profile in ``directory`` (e.g. firmware-config/classes)."""
    return [
        upsert_device_class(session, profile=parse_profile(path.read_text(), source=str(path)))
        for path in sorted(directory.glob("*.yaml"))
    ]


def list_device_classes(session: Session) -> Sequence[DeviceClass]:
    """All device classes, by name."""
    return session.exec(select(DeviceClass).order_by(col(DeviceClass.name))).all()


# --- devices -------------------------------------------------------------------


def get_device(session: Session, *, device_id: str) -> Device | None:
    """One device, or None."""
    return session.get(Device, device_id)


def create_device(session: Session, *, device_in: DeviceCreate) -> Device:
    """Enroll a device; one already seen on MQTT becomes enrolled with the given fields."""
    device = session.get(Device, device_in.id)
    if device is None:
        device = Device.model_validate(device_in, update={"enrolled": True})
    else:
        device.enrolled = True
        for key, value in device_in.model_dump(exclude={"id"}, exclude_none=True).items():
            setattr(device, key, value)
    session.add(device)
    session.flush()
    return device


def update_device(session: Session, *, device: Device, device_in: DeviceUpdate) -> Device:
    """Apply the fields set in ``device_in``."""
    device.sqlmodel_update(device_in.model_dump(exclude_unset=True))
    session.add(device)
    session.flush()
    return device


def devices_query(
    *,
    device_class: str | None = None,
    status: str | None = None,
    model_id: str | None = None,
    search: str | None = None,
) -> SelectOfScalar[Device]:
    """Devices by id, filtered by class, status, served model, or id/name containing ``search``."""
    query = select(Device)
    for column, value in (
        (Device.device_class, device_class), (Device.status, status), (Device.model_id, model_id)
    ):  # fmt: skip
        if value is not None:
            query = query.where(col(column) == value)
    if search:
        pattern = f"%{search.replace('%', '').replace('_', '')}%"
        query = query.where(or_(col(Device.id).like(pattern), col(Device.name).like(pattern)))
    return query.order_by(col(Device.id))


def delete_device(session: Session, *, device: Device) -> None:
    """Remove a device and (by cascade) its credentials and commands."""
    session.delete(device)
    session.flush()


# --- commands ------------------------------------------------------------------


def next_cmd_seq(session: Session, *, device_id: str) -> int:
    """Atomically take the next ``seq`` for a device's cmd topic."""
    result = session.execute(
        update(Device)
        .where(col(Device.id) == device_id)
        .values(cmd_seq=col(Device.cmd_seq) + 1)
        .returning(col(Device.cmd_seq))
    ).scalar_one_or_none()
    if result is None:
        raise LookupError(f"device {device_id!r} does not exist")
    return int(result)


def create_command(
    session: Session,
    *,
    device_id: str,
    command: AnyCommand,
    created_by: str | None = None,
    plan_id: int | None = None,
) -> Command:
    """Record a command (status pending) with the cmd-topic seq it will be sent with."""
    data: dict[str, Any] = command.model_dump(mode="json")
    if session.get(Command, data["command_id"]) is not None:
        raise ValueError(f"command id {data['command_id']!r} is already used")
    row = Command(
        id=data["command_id"],
        device_id=device_id,
        type=data["type"],
        body=data,
        status=CommandStatus.PENDING.value,
        seq=next_cmd_seq(session, device_id=device_id),
        plan_id=plan_id,
        created_by=created_by,
    )
    session.add(row)
    session.flush()
    return row


def mark_command_published(
    session: Session, *, command_id: str, published: bool, at: datetime | None = None
) -> None:
    """Record whether the broker accepted the command (ack statuses are never downgraded)."""
    status = CommandStatus.SENT if published else CommandStatus.PUBLISH_FAILED
    pending = col(Command.status) == CommandStatus.PENDING.value
    session.execute(
        update(Command)
        .where(col(Command.id) == command_id)
        .values(
            status=case((pending, status.value), else_=col(Command.status)),
            sent_at=at or utcnow(),
        )
    )


def commands_query(
    *, device_id: str | None = None, status: str | None = None, type: str | None = None
) -> SelectOfScalar[Command]:
    """Commands, newest first, filtered by device, status or type."""
    query = select(Command)
    for column, value in ((Command.device_id, device_id), (Command.status, status),
                          (Command.type, type)):  # fmt: skip
        if value is not None:
            query = query.where(col(column) == value)
    return query.order_by(col(Command.created_at).desc(), col(Command.id))


# --- dead letters --------------------------------------------------------------


def dead_letters_query(
    *, reason: str | None = None, device_id: str | None = None
) -> SelectOfScalar[DeadLetter]:
    """Dead letters, newest first, filtered by reason or device."""
    query = select(DeadLetter)
    if reason is not None:
        query = query.where(col(DeadLetter.reason) == reason)
    if device_id is not None:
        query = query.where(col(DeadLetter.device_id) == device_id)
    return query.order_by(col(DeadLetter.id).desc())


def dead_letter_counts(session: Session) -> dict[str, int]:
    """Running totals per reason."""
    return {row.reason: row.count for row in session.exec(select(DeadLetterCount)).all()}


# --- MQTT credentials ----------------------------------------------------------


def active_mqtt_credential(session: Session, *, device_id: str) -> MqttCredential | None:
    """The device's current (unrevoked) MQTT login, if any."""
    query = select(MqttCredential).where(
        MqttCredential.device_id == device_id, col(MqttCredential.revoked_at).is_(None)
    )
    return session.exec(query).first()


def active_mqtt_credentials(session: Session) -> Sequence[MqttCredential]:
    """Every unrevoked device login (what the Mosquitto files contain)."""
    query = select(MqttCredential).where(col(MqttCredential.revoked_at).is_(None))
    return session.exec(query.order_by(col(MqttCredential.username))).all()


def revoke_mqtt_credentials(session: Session, *, device_id: str) -> int:
    """Revoke every active login of a device; returns how many were revoked."""
    result = session.execute(
        update(MqttCredential)
        .where(col(MqttCredential.device_id) == device_id)
        .where(col(MqttCredential.revoked_at).is_(None))
        .values(revoked_at=utcnow())
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def add_mqtt_credential(
    session: Session, *, device_id: str, username: str, password_hash: str
) -> MqttCredential:
    """Replace the device's active login with a new one (the old one is revoked)."""
    revoke_mqtt_credentials(session, device_id=device_id)
    row = MqttCredential(device_id=device_id, username=username, password_hash=password_hash)
    session.add(row)
    session.flush()
    return row
