"""What ``bench/fleet_sim.py`` measures: enrollment, load, HTTP latency, commands, a kill, loss.

Each function takes the running :class:`ControllerReplicas` (and the test's own
engine on their database) and returns plain numbers for the JSON report.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import psutil
from sqlalchemy import Engine, func, text
from sqlmodel import Session, col, select

from bench.fleet_devices import SimDevice
from controller import models as db
from shared.stats import percentile
from tests.support.replicas import ControllerReplicas

SIM_PREFIX = "sim-"
BULK_BATCH = 1000
"""Devices per bulk enrollment call (``POST /devices/bulk``: one transaction, one broker sync)."""


def enroll_all(replicas: ControllerReplicas, fleet: list[tuple[str, str]]) -> list[SimDevice]:
    """Enroll every ``(device_id, class)`` through the API (running replicas in turn, 8 at once)."""
    clients = _clients(replicas)

    def enroll(item: tuple[int, tuple[str, str]]) -> SimDevice:
        index, (device_id, device_class) = item
        api = clients[index % len(clients)]
        response = api.post("/devices", json={"id": device_id, "device_class": device_class})
        response.raise_for_status()
        return SimDevice(device_id, device_class, response.json()["credentials"]["password"])

    try:
        with ThreadPoolExecutor(8) as pool:
            return list(pool.map(enroll, enumerate(fleet)))
    finally:
        for client in clients:
            client.close()


def enroll_bulk(replicas: ControllerReplicas, fleet: list[tuple[str, str]]) -> list[SimDevice]:
    """Enroll ``fleet`` through ``POST /devices/bulk``, ``BULK_BATCH`` devices per call."""
    devices = []
    with replicas.api(0) as api:
        for start in range(0, len(fleet), BULK_BATCH):
            chunk = fleet[start : start + BULK_BATCH]
            body = {"devices": [{"id": d, "device_class": c} for d, c in chunk]}
            response = api.post("/devices/bulk", json=body, timeout=httpx.Timeout(600))
            response.raise_for_status()
            devices += [
                SimDevice(
                    e["device"]["id"], e["device"]["device_class"], e["credentials"]["password"]
                )
                for e in response.json()["enrolled"]
            ]
    return devices


def provision(
    replicas: ControllerReplicas, fleet: list[tuple[str, str]], *, through_api: int
) -> tuple[list[SimDevice], dict[str, float]]:
    """The first ``through_api`` devices one by one, the rest in bulk; each path's rate.

    Both go through the API. One at a time, each enrollment rewrites the broker's
    password and ACL files, which limits it to a few devices per second on a large
    fleet; a bulk call syncs them once per ``BULK_BATCH`` devices.
    """
    started = time.monotonic()
    devices = enroll_all(replicas, fleet[:through_api])
    rates = {"api_per_s": round(len(devices) / (time.monotonic() - started), 1)}
    rest = fleet[through_api:]
    started = time.monotonic()
    devices += enroll_bulk(replicas, rest)
    if rest:
        rates["bulk_per_s"] = round(len(rest) / (time.monotonic() - started), 1)
    return devices, rates


class Sampler:
    """Every 2 s: CPU (% of one core) and RSS of the replicas and the broker, the load average."""

    def __init__(self, controller_pids: list[int], *, broker_pid: int) -> None:
        self.processes = {"broker": [psutil.Process(broker_pid)]}
        self.processes["controllers"] = [psutil.Process(p) for p in controller_pids]
        self.samples: dict[str, list[tuple[float, float]]] = {name: [] for name in self.processes}
        self.loads: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Sampler:
        """Begin sampling in a thread."""
        for group in self.processes.values():
            for process in group:
                process.cpu_percent()
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(2.0):
            self.loads.append(psutil.getloadavg()[0])
            for name, group in self.processes.items():
                cpu = rss = 0.0
                for process in group:
                    try:
                        cpu += process.cpu_percent()
                        rss += process.memory_info().rss / 2**20
                    except psutil.NoSuchProcess:
                        continue
                self.samples[name].append((cpu, rss))

    def stop(self) -> dict[str, Any]:
        """Stop; mean and peak CPU and peak RSS per group (controllers summed over replicas)."""
        self._stop.set()
        self._thread.join(5)
        out = {}
        for name, samples in self.samples.items():
            cpus = [c for c, _ in samples] or [0.0]
            out[name] = {
                "cpu_pct_mean": round(sum(cpus) / len(cpus), 1),
                "cpu_pct_p95": round(percentile(cpus, 95), 1),
                "rss_mb_max": round(max((r for _, r in samples), default=0.0), 1),
            }
        loads = self.loads or [psutil.getloadavg()[0]]
        out["load_1m_mean"] = round(sum(loads) / len(loads), 2)
        out["load_1m_max"] = round(max(loads), 2)
        return out


def _timed(call: Any) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def _dashboard_refresh(api: httpx.Client) -> None:
    """Every /devices page, serving, dead letters: the whole-fleet read of the unpaged view."""
    offset, total = 0, 1
    while offset < total:
        page = api.get("/devices", params={"limit": 500, "offset": offset})
        page.raise_for_status()
        total, offset = page.json()["total"], offset + 500
    api.get("/serving/latest").raise_for_status()
    api.get("/dead-letters/counts").raise_for_status()


def http_p99(
    replicas: ControllerReplicas, what: str, params: dict[str, Any], *, n: int
) -> dict[str, float]:
    """p50/p99 milliseconds of ``n`` sequential calls, running replicas in turn."""
    clients = _clients(replicas)
    try:
        if what == "dashboard":
            times = [_timed(lambda c=c: _dashboard_refresh(c)) for c in _cycle(clients, n)]
        else:
            times = [
                _timed(lambda c=c: c.get(what, params=params).raise_for_status())
                for c in _cycle(clients, n)
            ]
    finally:
        for client in clients:
            client.close()
    return {"n": n, "p50": round(percentile(times, 50), 1), "p99": round(percentile(times, 99), 1)}


def _clients(replicas: ControllerReplicas) -> list[httpx.Client]:
    return [replicas.api(i) for i in range(len(replicas.ports)) if replicas.running(i)]


def _cycle(items: list[Any], n: int) -> list[Any]:
    return [items[i % len(items)] for i in range(max(1, n))]


def command_round_trip(
    replicas: ControllerReplicas, devices: list[SimDevice], *, n: int
) -> dict[str, Any]:
    """Send ``identify`` to ``n`` random devices; how many were acked, and how fast."""
    api = replicas.api(0)
    try:
        ids = []
        for device in random.Random(7).sample(devices, n):
            body = {"device_id": device.device_id, "command": {"type": "identify"}}
            response = api.post("/commands", json=body)
            response.raise_for_status()
            ids.append(response.json()["commands"][0]["id"])
        deadline, done = time.monotonic() + 90, {}
        while len(done) < len(ids) and time.monotonic() < deadline:
            for command_id in set(ids) - set(done):
                detail = api.get(f"/commands/{command_id}").json()
                if detail["acked_at"]:
                    done[command_id] = detail
            time.sleep(1)
    finally:
        api.close()
    waits = [_ms_between(d["created_at"], d["acked_at"]) for d in done.values()]
    out: dict[str, Any] = {"sent": len(ids), "acked": len(done)}
    if waits:
        out |= {"p50_ms": round(percentile(waits, 50)), "p99_ms": round(percentile(waits, 99))}
    return out


def _ms_between(start: str, end: str) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() * 1000


def kill_and_restart_leader(
    replicas: ControllerReplicas, engine: Engine, *, restart_after_s: float
) -> dict[str, Any]:
    """SIGKILL the planner lease holder; time the takeover; restart it (as systemd would)."""
    leader = replicas.leader(engine)
    assert leader is not None, "nobody holds the planner lease"
    child = replicas.children[leader]
    assert child is not None
    others = [i for i in range(len(replicas.ports)) if i != leader and replicas.running(i)]
    killed = time.monotonic()
    child.process.send_signal(signal.SIGKILL)
    child.process.wait(10)
    takeover_s = None
    while time.monotonic() - killed < 120:
        holder = replicas.leader(engine)
        if holder is not None and holder != leader:
            takeover_s = time.monotonic() - killed
            break
        if not others and time.monotonic() - killed > restart_after_s:
            break
        time.sleep(0.1)
    time.sleep(max(0.0, restart_after_s - (time.monotonic() - killed)))
    replicas.start(leader)
    while not replicas.healthy(leader):
        time.sleep(0.2)
    return {
        "killed": f"replica-{leader}",
        "takeover_s": None if takeover_s is None else round(takeover_s, 1),
        "restarted_after_s": round(time.monotonic() - killed, 1),
    }


def _sim_ledger(seq_base: int = 0) -> Any:
    return col(db.IngestedMessage.device_id).startswith(SIM_PREFIX) & (
        col(db.IngestedMessage.seq) > seq_base
    )


def wait_drained(engine: Engine, expected: int, *, seq_base: int, quiet_s: float = 30.0) -> float:
    """Seconds until the ledger holds ``expected`` sim messages (or stops growing for quiet_s)."""
    started = last_change = time.monotonic()
    last = -1
    while time.monotonic() - last_change < quiet_s:
        with Session(engine) as session:
            count = session.exec(
                select(func.count()).select_from(db.IngestedMessage).where(_sim_ledger(seq_base))
            ).one()
        if count >= expected:
            break
        if count != last:
            last, last_change = count, time.monotonic()
        time.sleep(1)
    return round(time.monotonic() - started, 1)


def stored_pairs(engine: Engine) -> set[tuple[str, int]]:
    """Every (device_id, seq) of a simulated device in the ingest ledger."""
    with Session(engine) as session:
        rows = session.exec(
            select(db.IngestedMessage.device_id, db.IngestedMessage.seq).where(_sim_ledger())
        ).all()
    return {(device_id, int(seq)) for device_id, seq in rows}


def ingest_lag(engine: Engine, *, seq_base: int) -> dict[str, float]:
    """Heartbeats' received_at - sent_at (device clock = controller clock here), p50/p99 ms."""
    query = "SELECT EXTRACT(EPOCH FROM received_at - sent_at) * 1000 FROM heartbeat WHERE seq > :b"
    with Session(engine) as session:
        lags = session.execute(text(query), {"b": seq_base}).scalars()
        values = [float(v) for v in lags]
    return {
        "n": len(values),
        "p50": round(percentile(values, 50), 1),
        "p99": round(percentile(values, 99), 1),
    }
