"""What the dashboard costs the controller: every API call its views make, with 1,000 and
10,000 devices (p50/p99), and the page's load time in Chromium with 1,000 devices.

Fills a SQLite file with N devices (state, heartbeat and hello columns as ingest leaves
them), a day of heartbeats and serving metrics every 5 minutes for each of 50 devices, and a
few hundred commands, acks, dead letters and plans; serves the real app with uvicorn in a
separate process (the one in bench/api.py) and times sequential requests, after warm-up,
with an admin token. The overview's fleet table asks for one page of 100 devices (and three
counts); ``allPages(devices)``, which the registry still runs, is timed as it runs it: page
after page of 500.

    python bench/dashboard.py                        # 1,000 and 10,000 devices, browser at 1,000
    python bench/dashboard.py --devices 1000 --requests 50 --no-browser
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import Engine, insert

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.api import percentiles, timed  # noqa: E402
from controller.core.db import create_db_engine, migrate  # noqa: E402
from controller.models import (  # noqa: E402
    Command,
    CommandAck,
    DeadLetter,
    Device,
    Heartbeat,
    Plan,
    ServingMetric,
)
from tests.support.ports import free_port, wait_for_port  # noqa: E402

TOKEN = "eft_bench-admin-token-" + "d" * 24
CLASSES = ["pi3b-1gb", "pi4-4gb", "pi5-8gb", "cheap-pc-8gb", "old-laptop-4gb"]
HISTORY_DEVICES = 50
FOCUS = "dev-00042"


def _device(i: int, rng: random.Random, now: datetime) -> dict[str, object]:
    return {
        "id": f"dev-{i:05d}", "name": f"box {i}", "device_class": CLASSES[i % len(CLASSES)],
        "status": "online" if rng.random() < 0.7 else "offline",
        "model_id": rng.choice(["smollm2", "gemma3", None]), "refine": rng.random() < 0.3,
        "enrolled": True, "created_at": now, "cmd_seq": 0, "last_seen_at": now,
        "cached_models": [{"model_id": "smollm2", "size_bytes": 100_000_000}],
        "last_heartbeat": {"load_1m": 0.4, "mem_available_mb": 900.0, "temperature_c": 51.0},
    }  # fmt: skip


def _history(device_id: str, rng: random.Random, now: datetime) -> Iterator[tuple[type, dict]]:
    for k in range(288):  # a day, every 5 minutes
        at = now - timedelta(minutes=5 * k)
        common = {"device_id": device_id, "seq": 2 * k, "sent_at": at, "received_at": at}
        yield Heartbeat, {**common, "uptime_s": 1e5, "load_1m": rng.uniform(0, 2),
                          "mem_available_mb": rng.uniform(300, 900),
                          "rss_mb": rng.uniform(90, 300), "temperature_c": rng.uniform(40, 70),
                          "outbox_depth": rng.randint(0, 3)}  # fmt: skip
        yield ServingMetric, {**common, "seq": 2 * k + 1, "window_s": 300.0, "requests": 3,
                              "decode_tok_s": rng.uniform(5, 40),
                              "latency_ms_p95": rng.uniform(500, 9000)}  # fmt: skip


def _events(rng: random.Random, now: datetime) -> Iterator[tuple[type, dict]]:
    for k in range(300):
        at = now - timedelta(minutes=k)
        command_id = uuid.UUID(int=rng.getrandbits(128)).hex
        device_id = f"dev-{rng.randrange(HISTORY_DEVICES):05d}"
        yield Command, {"id": command_id, "device_id": device_id, "type": "identify", "seq": k,
                        "body": {"type": "identify"}, "status": "done", "created_by": "bench",
                        "created_at": at, "sent_at": at, "acked_at": at}  # fmt: skip
        yield CommandAck, {"command_id": command_id, "device_id": device_id, "seq": k,
                           "status": "done", "detail": {}, "sent_at": at,
                           "received_at": at}  # fmt: skip
        yield DeadLetter, {"received_at": at, "topic": f"edgefleet/v1/{device_id}/heartbeat",
                           "device_id": device_id, "reason": "invalid_json", "detail": "bad",
                           "payload": b"x", "payload_size": 1}  # fmt: skip
    for k in range(20):
        yield Plan, {"status": "superseded", "params": {}, "summary": f"plan {k}", "reasons": [],
                     "created_by": "bench", "created_at": now - timedelta(hours=k)}  # fmt: skip


def fill(engine: Engine, devices: int, now: datetime) -> None:
    """Devices, then a day of history for the first HISTORY_DEVICES, then events."""
    rng = random.Random(7)
    rows: dict[type, list[dict]] = {Device: [_device(i, rng, now) for i in range(devices)]}
    for i in range(HISTORY_DEVICES):
        for table, row in _history(f"dev-{i:05d}", rng, now):
            rows.setdefault(table, []).append(row)
    for table, row in _events(rng, now):
        rows.setdefault(table, []).append(row)
    with engine.begin() as conn:
        for table, batch in rows.items():
            conn.execute(insert(table), batch)


def dashboard_calls(now: datetime) -> list[tuple[str, str, dict[str, object]]]:
    """(view: call, path, params) for every call the dashboard's views make."""
    day = {"since": (now - timedelta(days=1)).isoformat(), "until": now.isoformat()}
    device = f"/api/v1/devices/{FOCUS}"
    calls = [
        ("all: me", "/api/v1/me", {}),
        ("overview: devices, a page of 100", "/api/v1/devices", {"limit": 100}),
        (
            "overview: devices online, count only",
            "/api/v1/devices",
            {"status": "online", "limit": 1},
        ),
        (
            "overview: serving/latest, a page of 100",
            "/api/v1/serving/latest",
            {"device_id": [f"dev-{i:05d}" for i in range(100)]},
        ),
        ("overview (before): serving/latest, every device", "/api/v1/serving/latest", {}),
        ("overview+events: dead-letters/counts", "/api/v1/dead-letters/counts", {}),
        ("overview+quality: scores", "/api/v1/scores", {}),
        ("overview+events: plans (20)", "/api/v1/plans", {"limit": 20}),
        ("device: device", device, {}),
        ("device: class", "/api/v1/classes/pi5-8gb", {}),
        ("device: states", f"{device}/states", {"limit": 200, "since": day["since"]}),
        ("device: bench results", "/api/v1/bench/results", {"device_id": FOCUS, "limit": 50}),
        ("device: commands", "/api/v1/commands", {"device_id": FOCUS, "limit": 50}),
        ("device: acks", "/api/v1/acks", {"device_id": FOCUS, "limit": 200}),
        ("quality: classes", "/api/v1/classes", {}),
        ("quality: bench summary", "/api/v1/bench/summary", {}),
        ("registry: models (500)", "/api/v1/models", {"limit": 500}),
        ("events: commands (100)", "/api/v1/commands", {"limit": 100}),
        ("events: acks (300)", "/api/v1/acks", {"limit": 300}),
        ("events: dead letters (100)", "/api/v1/dead-letters", {"limit": 100}),
    ]
    for field in ("decode_tok_s", "latency_ms_p95", "rss_mb", "temperature_c", "load_1m",
                  "outbox_depth"):  # fmt: skip
        calls.append((f"device: metrics {field}, 24 h", f"{device}/metrics",
                      {"field": field, "max_points": 288, **day}))  # fmt: skip
    return calls


def all_devices(client: httpx.Client) -> Callable[[], object]:
    """The registry's allPages('devices') (the fleet table's before it was paged): pages of
    500 until the total."""

    def run() -> object:
        offset, total = 0, 1
        while offset < total:
            page = client.get("/api/v1/devices", params={"limit": 500, "offset": offset})
            page.raise_for_status()
            total = page.json()["total"]
            offset += 500
        return total

    return run


@contextmanager
def served(devices: int, now: datetime) -> Iterator[str]:
    """A filled database behind the real app in its own uvicorn process; yields its URL."""
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        engine = create_db_engine(f"sqlite:///{data_dir / 'controller.db'}")
        migrate(engine)
        started = time.perf_counter()
        fill(engine, devices, now)
        engine.dispose()
        print(f"\nfilled {devices} devices in {time.perf_counter() - started:.1f} s")
        port = free_port()
        env = {**os.environ, "PYTHONPATH": str(REPO),
               "EDGEFLEET_CONTROLLER_BOOTSTRAP_ADMIN_TOKEN": TOKEN}  # fmt: skip
        server = subprocess.Popen(
            [sys.executable, str(REPO / "bench" / "api.py"), "--serve", str(data_dir), str(port)],
            env=env,
        )
        try:
            wait_for_port(port, timeout=300)  # a busy 2-core machine starts uvicorn slowly
            yield f"http://127.0.0.1:{port}"
        finally:
            server.terminate()
            server.wait(10)


def measure_api(url: str, now: datetime, n: int) -> dict[str, tuple[float, float]]:
    """p50/p99 ms of every dashboard call."""
    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
    results = {}
    for label, path, params in dashboard_calls(now):
        client.get(path, params=params).raise_for_status()
        results[label] = percentiles(
            timed(lambda p=path, q=params: client.get(p, params=q).raise_for_status(), n)
        )
    results["registry (and overview before): all devices, pages of 500"] = percentiles(
        timed(all_devices(client), max(5, n // 5))
    )
    client.close()
    return results


def measure_browser(url: str, rounds: int) -> dict[str, list[float]]:
    """Seconds from navigation to a full page, signed in, in Debian's Chromium."""
    from playwright.sync_api import sync_playwright

    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    out: dict[str, list[float]] = {"overview (fleet table filled)": [], "device page (charts)": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=args)
        for _ in range(rounds):
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            page.set_default_timeout(120_000)
            page.goto(f"{url}/dashboard/")
            page.fill("#token", TOKEN)
            started = time.perf_counter()
            page.click("#signin-button")
            page.wait_for_selector("#refreshed:has-text('Updated at')")
            page.wait_for_function("document.querySelectorAll('#devices tbody tr').length > 0")
            out["overview (fleet table filled)"].append(time.perf_counter() - started)
            started = time.perf_counter()
            page.goto(f"{url}/dashboard/#/device/{FOCUS}")
            page.wait_for_selector("#chart-outbox circle.point")
            out["device page (charts)"].append(time.perf_counter() - started)
            page.context.close()
        browser.close()
    return out


def main() -> None:
    """Measure at each fleet size, then the browser at the first; print markdown tables."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5, help="browser page loads")
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    now = datetime.now(UTC)
    table: dict[str, dict[int, tuple[float, float]]] = {}
    loads: dict[str, list[float]] = {}
    for devices in args.devices:
        with served(devices, now) as url:
            for label, value in measure_api(url, now, args.requests).items():
                table.setdefault(label, {})[devices] = value
            if devices == args.devices[0] and not args.no_browser:
                loads = measure_browser(url, args.rounds)
    sizes = args.devices
    print("\n| call | " + " | ".join(f"{d} devices p50 / p99 ms" for d in sizes) + " |")
    print("|---|" + "---:|" * len(sizes))
    for label, by_size in table.items():
        cells = " | ".join(f"{by_size[d][0]:.1f} / {by_size[d][1]:.1f}" for d in sizes)
        print(f"| {label} | {cells} |")
    for label, seconds in loads.items():
        ordered = sorted(seconds)
        median = ordered[len(ordered) // 2]
        print(
            f"\n{label}, {sizes[0]} devices: median {median:.2f} s, "
            f"min {ordered[0]:.2f} s, max {ordered[-1]:.2f} s over {len(seconds)} loads"
        )


if __name__ == "__main__":
    main()
