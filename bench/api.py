"""Controller API latency with a large fleet: device list and metric queries.

Fills a SQLite file with N devices and M serving-metric rows (bulk insert),
serves the real app with uvicorn in a separate process, and times sequential
requests from this process. For each query it also times the same SQL run
directly (no HTTP, no auth, no JSON), so the ratio shows what the API layer
adds on top of the database, measured side by side in one run.

    python bench/api.py                      # 10,000 devices, 1,000,000 metric rows
    python bench/api.py --devices 1000 --rows 100000 --requests 100
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import Engine, insert
from sqlmodel import Session, col, func, select

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from controller.api.timeseries import downsample  # noqa: E402
from controller.core.db import create_db_engine, migrate  # noqa: E402
from controller.models import Device, ServingMetric  # noqa: E402
from tests.support.ports import free_port, wait_for_port  # noqa: E402

TOKEN = "eft_bench-admin-token-" + "b" * 24
CLASSES = ["pi3b-1gb", "pi4-4gb", "pi5-8gb", "cheap-pc-8gb", "old-laptop-4gb"]
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
HOT = "hot-device"


def fill(engine: Engine, devices: int, rows: int) -> None:
    """Devices with hello/state columns, then metric rows: one hot device holds 10%."""
    rng = random.Random(7)
    device_rows = [
        {
            "id": f"dev-{i:05d}",
            "name": f"box {i}",
            "device_class": CLASSES[i % len(CLASSES)],
            "status": "online" if rng.random() < 0.7 else "offline",
            "model_id": rng.choice(["smollm2", "gemma3", None]),
            "enrolled": True,
            "created_at": NOW,
            "cmd_seq": 0,
        }
        for i in range(devices - 1)
    ]
    device_rows.append({**device_rows[0], "id": HOT, "name": "hot"})
    with engine.begin() as conn:
        conn.execute(insert(Device), device_rows)
    hot_rows = rows // 10
    per_device = max(1, (rows - hot_rows) // (devices - 1))
    batch: list[dict[str, object]] = []

    def flush() -> None:
        with engine.begin() as conn:
            conn.execute(insert(ServingMetric), batch)
        batch.clear()

    def add(device_id: str, seq: int, sent_at: datetime) -> None:
        batch.append(
            {"device_id": device_id, "seq": seq, "sent_at": sent_at, "received_at": sent_at,
             "window_s": 10.0, "requests": rng.randint(0, 5), "decode_tok_s": rng.uniform(5, 40),
             "latency_ms_p95": rng.uniform(500, 9000)}
        )  # fmt: skip
        if len(batch) >= 20_000:
            flush()

    for seq in range(hot_rows):  # one report every 6 s for the past week
        add(HOT, seq, NOW - timedelta(seconds=6 * (hot_rows - seq)))
    for row in device_rows[:-1]:
        for seq in range(per_device):  # one report every 10 min
            add(str(row["id"]), seq, NOW - timedelta(minutes=10 * (per_device - seq)))
    flush()


def serve(data_dir: Path, port: int) -> None:
    """Child process: the real app on uvicorn."""
    import uvicorn

    from controller.app import create_app
    from controller.core.config import ControllerSettings

    settings = ControllerSettings(data_dir=data_dir)
    uvicorn.run(create_app(settings), host="127.0.0.1", port=port, log_level="warning")


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p99 in milliseconds."""
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    return statistics.median(ordered) * 1000, p99 * 1000


def timed(call: Callable[[], object], n: int) -> list[float]:
    """Durations of ``n`` calls after 5 warm-up calls."""
    for _ in range(5):
        call()
    out = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        out.append(time.perf_counter() - started)
    return out


def sql_device_page(engine: Engine, offset: int, **filters: str) -> Callable[[], object]:
    """The device list's two queries (count and page), run directly."""

    def run() -> object:
        with Session(engine) as session:
            stmt = select(Device).where(*[col(getattr(Device, k)) == v for k, v in filters.items()])
            session.exec(select(func.count()).select_from(stmt.subquery())).one()
            return session.exec(stmt.order_by(col(Device.id)).offset(offset).limit(50)).all()

    return run


def sql_series(engine: Engine, device_id: str, window: timedelta) -> Callable[[], object]:
    """The metrics query, run directly."""

    def run() -> object:
        with Session(engine) as session:
            return downsample(
                session, ts=col(ServingMetric.sent_at), value=col(ServingMetric.decode_tok_s),
                where=[col(ServingMetric.device_id) == device_id], since=NOW - window,
                until=NOW, max_points=200,
            )  # fmt: skip

    return run


def main() -> None:
    """Fill, serve, measure, print a markdown table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--serve", nargs=2, metavar=("DATA_DIR", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(Path(args.serve[0]), int(args.serve[1]))
        return
    with tempfile.TemporaryDirectory() as tmp:
        run_benchmark(Path(tmp) / "data", args.devices, args.rows, args.requests)


def run_benchmark(data_dir: Path, devices: int, rows: int, n: int) -> None:
    """Everything but argument parsing."""
    engine = create_db_engine(f"sqlite:///{data_dir / 'controller.db'}")
    migrate(engine)
    started = time.perf_counter()
    fill(engine, devices, rows)
    print(f"filled {devices} devices, {rows} metric rows in {time.perf_counter() - started:.1f} s")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO),
           "EDGEFLEET_CONTROLLER_BOOTSTRAP_ADMIN_TOKEN": TOKEN}  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(data_dir), str(port)], env=env
    )
    try:
        wait_for_port(port, timeout=60)
        measure(engine, f"http://127.0.0.1:{port}", n)
    finally:
        server.terminate()
        server.wait(10)
        engine.dispose()


def measure(engine: Engine, url: str, n: int) -> None:
    """Time each query over HTTP and directly; print the table."""
    with Session(engine) as session:
        devices = session.exec(select(func.count()).select_from(Device)).one()
        hot_rows = session.exec(
            select(func.count()).select_from(ServingMetric).where(ServingMetric.device_id == HOT)
        ).one()
    offset = devices * 9 // 10
    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
    cases = [
        ("device list, first page of 50", "/api/v1/devices", {},
         sql_device_page(engine, 0)),
        (f"device list, page at offset {offset}", "/api/v1/devices", {"offset": offset},
         sql_device_page(engine, offset)),
        ("device list, class+status filter", "/api/v1/devices",
         {"device_class": "pi4-4gb", "status": "online"},
         sql_device_page(engine, 0, device_class="pi4-4gb", status="online")),
        ("metrics, one device, 24 h -> 200 pts", "/api/v1/devices/dev-00042/metrics", {},
         sql_series(engine, "dev-00042", timedelta(hours=24))),
        (f"metrics, hot device ({hot_rows} rows), 7 d -> 200 pts", f"/api/v1/devices/{HOT}/metrics",
         {"since": (NOW - timedelta(days=7)).isoformat(), "until": NOW.isoformat()},
         sql_series(engine, HOT, timedelta(days=7))),
    ]  # fmt: skip
    print("\n| query | HTTP p50 ms | HTTP p99 ms | SQL-only p50 ms | HTTP/SQL (p50) |")
    print("|---|---:|---:|---:|---:|")
    for label, path, params, direct in cases:
        check = client.get(path, params=params)
        check.raise_for_status()
        http = timed(lambda p=path, q=params: client.get(p, params=q).raise_for_status(), n)
        sql = timed(direct, n)
        (h50, h99), (s50, _) = percentiles(http), percentiles(sql)
        print(f"| {label} | {h50:.2f} | {h99:.2f} | {s50:.2f} | {h50 / s50:.1f}x |")
    client.close()


if __name__ == "__main__":
    main()
