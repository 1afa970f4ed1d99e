"""Device classes: the profiles from firmware-config, with how many devices each has."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import case, func
from sqlmodel import col, select

from controller import crud
from controller.api.deps import SessionDep
from controller.api.errors import not_found
from controller.models import Device, DeviceClass, DeviceClassPublic

router = APIRouter(prefix="/classes", tags=["device classes"])


class DeviceClassSummary(DeviceClassPublic):
    """A class with its device counts."""

    devices: int
    devices_online: int


def _counts(session: SessionDep) -> dict[str, tuple[int, int]]:
    online = func.sum(case((col(Device.status) == "online", 1), else_=0))
    rows = session.exec(
        select(col(Device.device_class), func.count(), online).group_by(col(Device.device_class))
    ).all()
    return {name: (int(total), int(up or 0)) for name, total, up in rows if name is not None}


@router.get("", response_model=list[DeviceClassSummary])
def list_classes(session: SessionDep) -> list[DeviceClassSummary]:
    """Every device class with its budgets and device counts."""
    counts = _counts(session)
    rows = crud.list_device_classes(session)
    return [
        DeviceClassSummary.model_validate(
            {**row.model_dump(), "devices": counts.get(row.name, (0, 0))[0],
             "devices_online": counts.get(row.name, (0, 0))[1]}
        )
        for row in rows
    ]  # fmt: skip


@router.get("/{name}", response_model=DeviceClassSummary)
def get_class(name: str, session: SessionDep) -> DeviceClassSummary:
    """One device class with its full profile."""
    row = session.get(DeviceClass, name)
    if row is None:
        raise not_found(f"device class {name!r}")
    total, online = _counts(session).get(name, (0, 0))
    return DeviceClassSummary.model_validate(
        {**row.model_dump(), "devices": total, "devices_online": online}
    )
