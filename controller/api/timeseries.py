"""Downsampled time series: at most ``max_points`` buckets, aggregated in the database.

A metrics query over a long window would otherwise ship every row to Python.
The bucket index is computed in SQL (one expression per dialect: SQLite and
PostgreSQL), so the database returns one row per bucket with mean, min, max
and count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Integer, cast, func, literal, select
from sqlalchemy.orm import Session

MIN_BUCKET_S = 1


@dataclass(frozen=True)
class Bucket:
    """One downsampled point."""

    start: datetime
    mean: float
    min: float
    max: float
    count: int


def bucket_seconds(since: datetime, until: datetime, max_points: int) -> int:
    """Bucket width so that ``[since, until)`` fits in ``max_points`` buckets."""
    if max_points < 1:
        raise ValueError("max_points must be at least 1")
    span = max((until - since).total_seconds(), 0.0)
    return max(MIN_BUCKET_S, math.ceil(span / max_points))


def _bucket_index(
    dialect: str, ts: ColumnElement[Any], since: datetime, width: int
) -> ColumnElement[Any]:
    if dialect == "sqlite":
        days = func.julianday(ts) - func.julianday(literal(_naive(since)))
        # julianday is a float of days: round to whole milliseconds before bucketing so a
        # sample at exactly a bucket edge is not pushed back by floating-point error; rows
        # are filtered to ts >= since, so integer division is floor
        millis = cast(func.round(days * 86_400_000.0), Integer)
        return millis // (width * 1000)
    seconds = func.extract("epoch", ts - literal(since))
    return func.floor(seconds / width)


def _naive(moment: datetime) -> str:
    """SQLite stores naive UTC text; compare against the same form."""
    return moment.replace(tzinfo=None).isoformat(sep=" ")


def downsample(
    session: Session,
    *,
    ts: ColumnElement[Any],
    value: ColumnElement[Any],
    where: list[ColumnElement[bool]],
    since: datetime,
    until: datetime,
    max_points: int,
) -> tuple[int, list[Bucket]]:
    """(bucket width in seconds, buckets in time order) of ``value`` over ``[since, until)``."""
    width = bucket_seconds(since, until, max_points)
    dialect = session.get_bind().dialect.name
    index = _bucket_index(dialect, ts, since, width).label("bucket")
    stmt = (
        select(index, func.avg(value), func.min(value), func.max(value), func.count(value))
        .where(*where, ts >= since, ts < until, value.is_not(None))
        .group_by(index)
        .order_by(index)
    )
    buckets = [
        Bucket(
            start=since + timedelta(seconds=int(idx) * width),
            mean=float(mean),
            min=float(low),
            max=float(high),
            count=int(count),
        )
        for idx, mean, low, high, count in session.execute(stmt)
        if count
    ]
    return width, buckets
