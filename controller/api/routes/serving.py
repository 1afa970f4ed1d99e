"""The newest serving-metrics report of every device, or of a page of them: fleet overviews."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import and_, func, true
from sqlmodel import col, select

from controller.api.deps import SessionDep
from controller.api.errors import bad_request
from controller.models import ServingMetric
from shared.messages import DeviceId

router = APIRouter(prefix="/serving", tags=["devices"])

MAX_DEVICE_IDS = 100
"""A page of the dashboard's fleet table; keeps the query string well under 16 kB."""


class LatestServing(BaseModel):
    """A device's newest ``metrics`` report: throughput and latency over its window."""

    device_id: str
    sent_at: datetime
    window_s: float
    model_id: str | None
    requests: int
    errors: int
    decode_tok_s: float | None
    ttft_ms_p95: float | None
    latency_ms_p50: float | None
    latency_ms_p95: float | None


@router.get("/latest", response_model=list[LatestServing])
def latest_serving(
    session: SessionDep,
    device_id: Annotated[
        list[DeviceId] | None,
        Query(description=f"only these devices (up to {MAX_DEVICE_IDS}); all when absent"),
    ] = None,
) -> list[ServingMetric]:
    """Each device's newest serving metrics (tok/s, latency p50/p95), by device id."""
    if device_id is not None and len(device_id) > MAX_DEVICE_IDS:
        raise bad_request("too_many_ids", f"at most {MAX_DEVICE_IDS} device_id values per call")
    wanted = true() if device_id is None else col(ServingMetric.device_id).in_(device_id)
    newest = (
        select(
            col(ServingMetric.device_id).label("device_id"),
            func.max(ServingMetric.sent_at).label("sent_at"),
        )
        .where(wanted)
        .group_by(col(ServingMetric.device_id))
        .subquery()
    )
    stmt = (
        select(ServingMetric)
        .join(
            newest,
            and_(
                col(ServingMetric.device_id) == newest.c.device_id,
                col(ServingMetric.sent_at) == newest.c.sent_at,
            ),
        )
        .order_by(col(ServingMetric.device_id), col(ServingMetric.seq).desc())
    )
    latest: dict[str, ServingMetric] = {}
    for row in session.exec(stmt).all():
        latest.setdefault(row.device_id, row)  # two reports with one timestamp: the higher seq
    return list(latest.values())
