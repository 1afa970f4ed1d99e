"""Device enrollment: MQTT credentials issued, rotated and revoked; broker files kept in step.

Only hashes are stored (Mosquitto ``$7$`` for MQTT passwords, SHA-256 for
one-time enrollment tokens); a plaintext secret is returned once, to the
caller that created it. Every change commits, then brings the broker in
step: the local broker the controller started (``controller.broker.local``),
or the Mosquitto files of an external broker when a controller password is
configured. An enrolled device id is never issued to a second holder: only
an operator's rotate replaces its login.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from controller import crud
from controller.broker.local import LocalBroker
from controller.broker.mosquitto import (
    Account,
    BrokerFileError,
    BrokerOptions,
    Listeners,
    MosquittoFiles,
    broker_files_lock,
    reload_mosquitto,
    write_mosquitto_files,
)
from controller.broker.passwords import generate_password, hash_password
from controller.core.config import ControllerSettings
from controller.core.db import session_scope
from controller.models import Device, DeviceCreate, EnrollmentToken, utcnow

logger = logging.getLogger(__name__)


class EnrollmentError(ValueError):
    """An enrollment request that cannot be honoured (unknown device, bad token)."""


class DeviceIdTaken(EnrollmentError):
    """The device id is enrolled already, or reserved for the controller's own clients."""


@dataclass(frozen=True)
class IssuedCredentials:
    """MQTT login handed to a device once; the password is not stored anywhere."""

    device_id: str
    username: str
    password: str = field(repr=False)


def token_hash(token: str) -> str:
    """SHA-256 of a high-entropy token (enough: tokens are random, not chosen by people)."""
    return hashlib.sha256(token.encode()).hexdigest()


def broker_accounts(engine: Engine) -> list[Account]:
    """Every active device login, as the broker files list them."""
    with Session(engine) as session:
        return [
            Account(c.username, c.password_hash, c.device_id)
            for c in crud.active_mqtt_credentials(session)
        ]


def _issue(session: Session, device_id: str) -> IssuedCredentials:
    password = generate_password()
    crud.add_mqtt_credential(
        session, device_id=device_id, username=device_id, password_hash=hash_password(password)
    )
    return IssuedCredentials(device_id=device_id, username=device_id, password=password)


class Enrollment:
    """Credential operations over one database, keeping the broker files in step."""

    def __init__(
        self, engine: Engine, settings: ControllerSettings, *, broker: LocalBroker | None = None
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.broker = broker

    def enroll(self, device_in: DeviceCreate) -> tuple[Device, IssuedCredentials]:
        """Create (or adopt a device seen only on MQTT) and issue its MQTT login."""
        return self.enroll_many([device_in])[0]

    def enroll_many(
        self, devices_in: Sequence[DeviceCreate]
    ) -> list[tuple[Device, IssuedCredentials]]:
        """Enroll every device in one transaction (all or none), then sync the broker once.

        For provisioning a site (or a simulated fleet) at once: each single
        enrollment rewrites the whole broker password and ACL files, so N of them
        cost N² lines written; this costs N.

        Every id is checked before anything is written: a taken one refuses the whole
        batch with no row, login or broker sync spent; a concurrent enrollment of the
        same id (caught by the database at commit) refuses it the same way.
        """
        enrolled = []
        try:
            with session_scope(self.engine) as session:
                self._check_free(session, [device_in.id for device_in in devices_in])
                for device_in in devices_in:
                    device = crud.create_device(session, device_in=device_in)
                    enrolled.append((device, _issue(session, device.id)))
        except IntegrityError:
            raise DeviceIdTaken("a device id in this batch was enrolled concurrently") from None
        self.sync_broker_files()
        return enrolled

    def rotate(self, device_id: str) -> IssuedCredentials:
        """Replace a device's MQTT password (the old one stops working)."""
        with session_scope(self.engine) as session:
            if crud.get_device(session, device_id=device_id) is None:
                raise EnrollmentError(f"device {device_id!r} does not exist")
            issued = _issue(session, device_id)
        self.sync_broker_files()
        return issued

    def revoke(self, device_id: str) -> int:
        """Revoke a device's MQTT login; returns how many logins were revoked."""
        with session_scope(self.engine) as session:
            revoked = crud.revoke_mqtt_credentials(session, device_id=device_id)
        self.sync_broker_files()
        return revoked

    def create_token(
        self, *, device_id: str | None = None, device_class: str | None = None,
        created_by: str | None = None,
    ) -> tuple[EnrollmentToken, str]:  # fmt: skip
        """A one-time enrollment token (returned once) for a device to fetch its credentials."""
        secret = "eft_" + secrets.token_urlsafe(32)
        row = EnrollmentToken(
            token_hash=token_hash(secret),
            device_id=device_id,
            device_class=device_class,
            created_by=created_by,
            expires_at=utcnow() + timedelta(seconds=self.settings.enrollment_token_ttl_s),
        )
        with session_scope(self.engine) as session:
            session.add(row)
        return row, secret

    def redeem(self, token: str, *, device_id: str) -> tuple[Device, IssuedCredentials]:
        """Exchange a valid unused token for a device's credentials (the token is then spent)."""
        with session_scope(self.engine) as session:
            query = select(EnrollmentToken).where(EnrollmentToken.token_hash == token_hash(token))
            row = session.exec(query.with_for_update()).first()
            if row is None or row.used_at is not None:
                raise EnrollmentError("enrollment token is unknown or already used")
            if row.expires_at is not None and row.expires_at < utcnow():
                raise EnrollmentError("enrollment token has expired")
            if row.device_id is not None and row.device_id != device_id:
                raise EnrollmentError(f"this token is for device {row.device_id!r}")
            self._check_free(session, [device_id])
            device_in = DeviceCreate(id=device_id, device_class=row.device_class)
            device = crud.create_device(session, device_in=device_in)
            row.used_at, row.used_by_device = utcnow(), device_id
            session.add(row)
            issued = _issue(session, device_id)
        self.sync_broker_files()
        return device, issued

    def _check_free(self, session: Session, device_ids: Sequence[str]) -> None:
        """Refuse ids the controller's clients use, or ones enrolled devices hold (one query)."""
        own = self.settings.mqtt_client_id
        reserved = {own, self.settings.mqtt_username}
        for device_id in device_ids:
            if device_id in reserved or device_id.startswith(f"{own}-"):
                raise DeviceIdTaken(f"device id {device_id!r} is reserved for the controller")
        query = select(Device.id).where(col(Device.id).in_(device_ids), col(Device.enrolled))
        taken = sorted(session.exec(query).all())
        if len(taken) == 1:
            raise DeviceIdTaken(
                f"device {taken[0]!r} is enrolled already; an operator can rotate its login"
            )
        if taken:
            shown = ", ".join(repr(device_id) for device_id in taken[:5])
            more = f" and {len(taken) - 5} more" if len(taken) > 5 else ""
            raise DeviceIdTaken(f"devices {shown}{more} are enrolled already")

    def sync_broker_files(self, *, directory: Path | None = None) -> MosquittoFiles | None:
        """Bring the broker in step with the registry's logins (failures are logged, retried).

        With a local broker, that broker re-reads them. Otherwise, when a controller
        password is configured, the external Mosquitto's files are rewritten (all or
        none; a failure keeps the old files, and the next change or
        ``edgefleet controller mosquitto-config`` writes them again).
        """
        if self.broker is not None and directory is None:
            self.broker.sync()
            return None
        password = self.settings.mqtt_password
        if password is None:
            logger.debug("no controller MQTT password configured; Mosquitto files not written")
            return None
        settings = self.settings
        target = directory or settings.broker_dir
        try:
            with broker_files_lock(target):
                files = write_mosquitto_files(
                    target,
                    topics=settings.topics,
                    controller_user=settings.mqtt_username,
                    controller_password=password.get_secret_value(),
                    accounts=broker_accounts(self.engine),
                    listeners=Listeners(
                        device_port=settings.mosquitto_listener_port,
                        device_bind=settings.mosquitto_listener_bind,
                        controller_port=settings.mosquitto_controller_port,
                    ),
                    options=BrokerOptions(
                        max_packet_bytes=settings.mqtt_max_packet_bytes,
                        persistence_dir=target / "data",
                    ),
                )
        except (OSError, BrokerFileError) as exc:
            logger.error("could not write the Mosquitto files (%s); the old ones stay", exc)
            return None
        if settings.mosquitto_pid_file is not None:
            reload_mosquitto(settings.mosquitto_pid_file)
        return files
