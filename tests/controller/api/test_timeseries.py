"""Downsampling in SQL gives the same buckets on SQLite and PostgreSQL."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col

from controller.api.timeseries import bucket_seconds, downsample
from controller.models import ServingMetric

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_bucket_width_covers_the_window() -> None:
    assert bucket_seconds(T0, T0 + timedelta(hours=1), 60) == 60
    assert bucket_seconds(T0, T0 + timedelta(seconds=61), 60) == 2
    assert bucket_seconds(T0, T0 + timedelta(seconds=5), 100) == 1
    with pytest.raises(ValueError):
        bucket_seconds(T0, T0, 0)


def test_downsample_matches_a_python_reference(engine: Engine) -> None:
    # irregular timestamps with sub-second parts, some exactly on bucket edges
    offsets = [i * 7.25 for i in range(500)] + [60.0, 120.0, 180.0]
    with Session(engine) as session:
        for seq, offset in enumerate(offsets):
            session.add(ServingMetric(device_id="d", seq=seq, window_s=1, latency_ms_p95=offset,
                                      sent_at=T0 + timedelta(seconds=offset)))  # fmt: skip
        session.commit()
        until = T0 + timedelta(seconds=3600)
        width, buckets = downsample(
            session,
            ts=col(ServingMetric.sent_at),
            value=col(ServingMetric.latency_ms_p95),
            where=[col(ServingMetric.device_id) == "d"],
            since=T0,
            until=until,
            max_points=30,
        )
    assert width == 120
    expected: dict[int, list[float]] = {}
    for offset in offsets:
        if offset < 3600:
            expected.setdefault(int(offset // width), []).append(offset)
    assert [b.start for b in buckets] == [
        T0 + timedelta(seconds=k * width) for k in sorted(expected)
    ]
    for bucket, key in zip(buckets, sorted(expected), strict=True):
        assert bucket.count == len(expected[key])
        assert bucket.mean == pytest.approx(statistics.fmean(expected[key]))
        assert (bucket.min, bucket.max) == (min(expected[key]), max(expected[key]))
