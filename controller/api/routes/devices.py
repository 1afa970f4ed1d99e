"""Devices: listing with filters, detail, edits, state history and metric time series."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from controller import crud
from controller.api.deps import SessionDep
from controller.api.errors import bad_request, not_found
from controller.api.pagination import Page, PageDep, paginate
from controller.api.params import as_utc
from controller.api.timeseries import downsample
from controller.models import (
    Device,
    DevicePublic,
    DeviceState,
    DeviceUpdate,
    Heartbeat,
    ServingMetric,
)

router = APIRouter(prefix="/devices", tags=["devices"])

MAX_POINTS = 2000
DEFAULT_WINDOW = timedelta(hours=24)


class Series(StrEnum):
    """Numeric fields with a time series: serving metrics and heartbeat vitals."""

    REQUESTS = "requests"
    ERRORS = "errors"
    GENERATED_TOKENS = "generated_tokens"
    DECODE_TOK_S = "decode_tok_s"
    TTFT_MS_P50 = "ttft_ms_p50"
    TTFT_MS_P95 = "ttft_ms_p95"
    LATENCY_MS_P50 = "latency_ms_p50"
    LATENCY_MS_P95 = "latency_ms_p95"
    LOAD_1M = "load_1m"
    CPU_PERCENT = "cpu_percent"
    MEM_AVAILABLE_MB = "mem_available_mb"
    RSS_MB = "rss_mb"
    TEMPERATURE_C = "temperature_c"
    OUTBOX_DEPTH = "outbox_depth"


_HEARTBEAT_SERIES = {
    Series.LOAD_1M,
    Series.CPU_PERCENT,
    Series.MEM_AVAILABLE_MB,
    Series.RSS_MB,
    Series.TEMPERATURE_C,
    Series.OUTBOX_DEPTH,
}


class Point(BaseModel):
    """One downsampled bucket: mean, min and max of the samples that fell in it."""

    t: datetime
    mean: float
    min: float
    max: float
    count: int


class TimeSeries(BaseModel):
    """A downsampled series of one field of one device."""

    device_id: str
    field: Series
    since: datetime
    until: datetime
    bucket_s: int
    points: list[Point]


def _get_device(session: Session, device_id: str) -> Device:
    device = session.get(Device, device_id)
    if device is None:
        raise not_found(f"device {device_id!r}")
    return device


@router.get("", response_model=Page[DevicePublic])
def list_devices(
    session: SessionDep,
    page: PageDep,
    device_class: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[str | None, Query(max_length=16, description="online, offline")] = None,
    model_id: Annotated[str | None, Query(max_length=128)] = None,
    q: Annotated[str | None, Query(max_length=64, description="id or name contains")] = None,
) -> Page[Any]:
    """Devices, filtered by class, status, served model or a search string, by id."""
    stmt = crud.devices_query(device_class=device_class, status=status, model_id=model_id, search=q)
    rows, total = paginate(session, stmt, page)
    return Page(items=rows, total=total, limit=page.limit, offset=page.offset)


@router.get("/{device_id}", response_model=DevicePublic)
def get_device(device_id: str, session: SessionDep) -> Device:
    """One device with its latest hello, state and heartbeat."""
    return _get_device(session, device_id)


@router.patch("/{device_id}", response_model=DevicePublic)
def update_device(device_id: str, update: DeviceUpdate, session: SessionDep) -> Device:
    """Change a device's display name, class or location."""
    device = crud.update_device(session, device=_get_device(session, device_id), device_in=update)
    session.commit()
    session.refresh(device)
    return device


class StatePublic(BaseModel):
    """One state message from the device's history."""

    seq: int
    sent_at: datetime
    received_at: datetime
    status: str
    model_id: str | None
    refine: bool
    strategy: str | None = Field(None, description="the strategy served; null: by refine")
    activity: str
    detail: str | None


@router.get("/{device_id}/states", response_model=Page[StatePublic])
def state_history(
    device_id: str,
    session: SessionDep,
    page: PageDep,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Page[Any]:
    """The device's state changes, newest first."""
    _get_device(session, device_id)
    filters = [col(DeviceState.device_id) == device_id]
    if since is not None:
        filters.append(col(DeviceState.sent_at) >= as_utc(since, name="since"))
    if until is not None:
        filters.append(col(DeviceState.sent_at) < as_utc(until, name="until"))
    stmt = select(DeviceState).where(*filters).order_by(col(DeviceState.sent_at).desc())
    rows, total = paginate(session, stmt, page)
    return Page(items=rows, total=total, limit=page.limit, offset=page.offset)


def _window(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    end = as_utc(until, name="until") if until is not None else datetime.now(UTC)
    try:
        start = as_utc(since, name="since") if since is not None else end - DEFAULT_WINDOW
    except OverflowError:
        raise bad_request("bad_time", "until is too early for the default window") from None
    if start >= end:
        raise bad_request("bad_window", "'since' must be earlier than 'until'")
    return start, end


@router.get("/{device_id}/metrics", response_model=TimeSeries)
def metric_series(
    device_id: str,
    session: SessionDep,
    field: Series = Series.DECODE_TOK_S,
    since: datetime | None = None,
    until: datetime | None = None,
    max_points: Annotated[int, Query(ge=1, le=MAX_POINTS)] = 200,
) -> TimeSeries:
    """A metric or vital of one device over time, downsampled to at most max_points buckets."""
    _get_device(session, device_id)
    start, end = _window(since, until)
    table: Any = Heartbeat if field in _HEARTBEAT_SERIES else ServingMetric
    width, buckets = downsample(
        session,
        ts=table.sent_at,
        value=getattr(table, field.value),
        where=[table.device_id == device_id],
        since=start,
        until=end,
        max_points=max_points,
    )
    points = [Point(t=b.start, mean=b.mean, min=b.min, max=b.max, count=b.count) for b in buckets]
    return TimeSeries(
        device_id=device_id, field=field, since=start, until=end, bucket_s=width, points=points
    )
