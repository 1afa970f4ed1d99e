"""Enrollment: create a device and its MQTT login, rotate or revoke it, one-time tokens."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field, field_validator
from sqlmodel import Session

from controller import crud
from controller.api.deps import AdminDep, OperatorDep, StateDep, bearer_scheme
from controller.api.errors import ApiError, not_found, unauthorized
from controller.enrollment import DeviceIdTaken, EnrollmentError, IssuedCredentials
from controller.models import Device, DeviceCreate, DevicePublic
from shared.messages import DeviceId
from shared.profiles import ClassName

router = APIRouter(tags=["enrollment"])
redeem_router = APIRouter(tags=["enrollment"])


class Credentials(BaseModel):
    """A device's MQTT login; the password is shown only in this response."""

    device_id: str
    username: str
    password: str


class Enrolled(BaseModel):
    """The new device and its login."""

    device: DevicePublic
    credentials: Credentials


MAX_BULK_ENROLL = 1000
"""Devices per bulk enrollment call: one transaction and one broker-file sync (4-11 s here)."""


class BulkEnrollRequest(BaseModel):
    """Devices to enroll together (a site's fleet): all of them or none."""

    devices: list[DeviceCreate] = Field(min_length=1, max_length=MAX_BULK_ENROLL)

    @field_validator("devices")
    @classmethod
    def _distinct_ids(cls, devices: list[DeviceCreate]) -> list[DeviceCreate]:
        counts = Counter(d.id for d in devices)
        repeated = sorted(device_id for device_id, n in counts.items() if n > 1)
        if repeated:
            raise ValueError(f"device ids appear more than once: {', '.join(repeated[:5])}")
        return devices


class BulkEnrolled(BaseModel):
    """Every new device with its login, in the order asked."""

    enrolled: list[Enrolled]


class Revoked(BaseModel):
    """How many logins were revoked."""

    device_id: str
    revoked: int


class EnrollmentTokenRequest(BaseModel):
    """A one-time token, optionally bound to a device id and class."""

    device_id: DeviceId | None = None
    device_class: ClassName | None = None


class EnrollmentTokenIssued(BaseModel):
    """The one-time token (shown once) and when it expires."""

    token: str
    device_id: str | None
    device_class: str | None
    expires_at: datetime | None


class RedeemRequest(BaseModel):
    """A device asking for its login with a one-time token."""

    device_id: DeviceId = Field(description="the id the device will use")


def _creds(issued: IssuedCredentials) -> Credentials:
    return Credentials(
        device_id=issued.device_id, username=issued.username, password=issued.password
    )


def _exists(state: StateDep, device_id: str) -> None:
    with Session(state.engine) as session:
        if session.get(Device, device_id) is None:
            raise not_found(f"device {device_id!r}")


@router.post("/devices", response_model=Enrolled, status_code=201)
def enroll_device(body: DeviceCreate, state: StateDep, caller: OperatorDep) -> Enrolled:
    """Enroll a device (or adopt one seen only on MQTT) and issue its MQTT login.

    An enrolled id is refused (409): its login changes only through rotation.
    """
    try:
        device, issued = state.enrollment.enroll(body)
    except DeviceIdTaken as exc:
        raise ApiError(409, "device_id_taken", str(exc)) from None
    state.devices.forget()
    return Enrolled(device=DevicePublic.model_validate(device), credentials=_creds(issued))


@router.post("/devices/bulk", response_model=BulkEnrolled, status_code=201)
def enroll_devices(body: BulkEnrollRequest, state: StateDep, caller: AdminDep) -> BulkEnrolled:
    """Enroll up to ``MAX_BULK_ENROLL`` devices in one transaction and one broker-file sync.

    One enrollment at a time rewrites the broker's files per device (a few devices/s on
    a large fleet). Any taken id refuses the whole call (409) before anything is written.
    """
    try:
        pairs = state.enrollment.enroll_many(body.devices)
    except DeviceIdTaken as exc:
        raise ApiError(409, "device_id_taken", str(exc)) from None
    state.devices.forget()
    return BulkEnrolled(
        enrolled=[
            Enrolled(device=DevicePublic.model_validate(device), credentials=_creds(issued))
            for device, issued in pairs
        ]
    )


@router.post("/devices/{device_id}/credentials", response_model=Credentials)
def rotate_credentials(device_id: str, state: StateDep, caller: OperatorDep) -> Credentials:
    """Issue a new MQTT password; the old one stops working."""
    try:
        issued = state.enrollment.rotate(device_id)
    except EnrollmentError:
        raise not_found(f"device {device_id!r}") from None
    state.devices.forget()
    return _creds(issued)


@router.delete("/devices/{device_id}/credentials", response_model=Revoked)
def revoke_credentials(device_id: str, state: StateDep, caller: OperatorDep) -> Revoked:
    """Revoke the device's MQTT login (broker files are regenerated)."""
    _exists(state, device_id)
    revoked = state.enrollment.revoke(device_id)
    state.devices.forget()
    return Revoked(device_id=device_id, revoked=revoked)


@router.delete("/devices/{device_id}", status_code=204)
def delete_device(device_id: str, state: StateDep, caller: OperatorDep) -> None:
    """Forget a device: revoke its login, then delete it with its commands."""
    _exists(state, device_id)
    state.enrollment.revoke(device_id)
    state.devices.forget()
    with Session(state.engine) as session:
        device = session.get(Device, device_id)
        if device is not None:
            crud.delete_device(session, device=device)
            session.commit()


@router.post("/enrollment-tokens", response_model=EnrollmentTokenIssued, status_code=201)
def create_enrollment_token(
    body: EnrollmentTokenRequest, state: StateDep, caller: OperatorDep
) -> EnrollmentTokenIssued:
    """A one-time token a new device exchanges for its login (shown once)."""
    row, secret = state.enrollment.create_token(
        device_id=body.device_id, device_class=body.device_class, created_by=caller.name
    )
    return EnrollmentTokenIssued(
        token=secret, device_id=row.device_id, device_class=row.device_class,
        expires_at=row.expires_at,
    )  # fmt: skip


def enrollment_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> str:
    """The one-time enrollment token presented as a Bearer credential."""
    if credentials is None or not credentials.credentials:
        raise unauthorized("send the one-time enrollment token as 'Authorization: Bearer <token>'")
    return credentials.credentials


@redeem_router.post("/enroll", response_model=Enrolled, status_code=201)
def redeem_enrollment_token(
    body: RedeemRequest, state: StateDep, token: Annotated[str, Depends(enrollment_token)]
) -> Enrolled:
    """A device trades its one-time enrollment token (as Bearer) for its MQTT login."""
    try:
        device, issued = state.enrollment.redeem(token, device_id=body.device_id)
    except DeviceIdTaken as exc:
        raise ApiError(409, "device_id_taken", str(exc)) from None
    except EnrollmentError as exc:
        raise ApiError(403, "enrollment_refused", str(exc)) from None
    state.devices.forget()
    return Enrolled(device=DevicePublic.model_validate(device), credentials=_creds(issued))
