"""Fleet simulator: N devices over real MQTT against 1 or 2 controller replicas on PostgreSQL.

Starts a throwaway PostgreSQL, ``edgefleet controller run`` replicas (one MQTT
5 shared subscription, a client id each, the planner lease), enrolls N devices
(each gets its own MQTT login: ``--api-enroll`` of them one at a time through
the API, the rest through its bulk enrollment), then starts Mosquitto with the
config, password and ACL files the controller wrote, and plays the devices from a few
worker processes (``bench/fleet_devices.py``): hello, state with last will,
heartbeats, metrics, bench results, acks to commands, a mix of classes from
``firmware-config/classes`` and churn. While they run it samples the
controllers' CPU and RSS, times ``/devices`` and the dashboard's fleet refresh,
sends commands, and with ``--kill`` SIGKILLs the lease holder and restarts it.
At the end it compares every broker-acknowledged ``(device, seq)`` with the
ingest ledger (lost must be 0), reads the ingest lag from the stored rows and
times a full fleet plan (``GET /plans/draft``).

    python bench/fleet_sim.py --devices 1000 --replicas 1 2 --kill --json out.json

``--replicas 1 2`` enrolls the fleet once and runs it twice, against one
replica and then against two (the devices' seqs continue, so the phases'
messages never collide in the ledger).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.engine.tiny_gguf import TinyModelSpec, write_tiny_gguf  # noqa: E402
from bench.fleet_devices import SimDevice, Tally, Timers, run_worker  # noqa: E402
from bench.fleet_measure import (  # noqa: E402
    Sampler,
    command_round_trip,
    http_p99,
    ingest_lag,
    kill_and_restart_leader,
    provision,
    stored_pairs,
    wait_drained,
)
from controller import models as db  # noqa: E402
from controller.core.config import ControllerSettings  # noqa: E402
from controller.core.db import create_db_engine, migrate  # noqa: E402
from controller.demo.processes import ProcessGroup  # noqa: E402
from controller.enrollment import Enrollment  # noqa: E402
from tests.controller.postgres import TempPostgres  # noqa: E402
from tests.support.broker import MosquittoBroker  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from tests.support.replicas import ControllerReplicas  # noqa: E402

CLASSES_DIR = Path(__file__).resolve().parent.parent / "firmware-config" / "classes"
CLASS_MIX = {
    "pi4-4gb": 0.35,
    "pi5-8gb": 0.15,
    "pizero2w-512mb": 0.15,
    "pi3b-1gb": 0.10,
    "old-laptop-4gb": 0.15,
    "cheap-pc-8gb": 0.10,
}
"""Share of each device class in the simulated fleet (Pis dominate, as in the target sites)."""
DEVICES_PER_WORKER = 2500
MODELS = {"m-small": TinyModelSpec(n_embd=64), "m-big": TinyModelSpec(n_embd=256, n_layers=4)}


def _start_replicas(replicas: ControllerReplicas, count: int) -> None:
    for index in range(count):
        if replicas.running(index):
            continue
        replicas.start(index)
        deadline = time.monotonic() + 120
        while not replicas.healthy(index):  # one at a time: start-up runs under a lock anyway
            if time.monotonic() > deadline or not replicas.running(index):
                raise RuntimeError(f"replica {index} did not start; see {replicas.workdir}")
            time.sleep(0.3)


def _import_models(replicas: ControllerReplicas, workdir: Path) -> None:
    """The models the simulated bench results name, in the registry, so the planner has options."""
    with replicas.api(0) as api:
        for model_id, spec in MODELS.items():
            path = write_tiny_gguf(workdir / f"{model_id}.gguf", spec)
            response = api.post(
                "/models/upload", params={"model_id": model_id}, content=path.read_bytes(),
                headers={"Content-Type": "application/octet-stream"},
            )  # fmt: skip
            response.raise_for_status()


def _online(engine: Engine) -> int:
    with Session(engine) as session:
        query = (
            select(func.count())
            .select_from(db.Device)
            .where(col(db.Device.status) == "online", col(db.Device.id).startswith("sim-"))
        )
        return int(session.exec(query).one())


def _time_plan(replicas: ControllerReplicas) -> dict[str, Any]:
    """A full fleet plan from the database (the dry run: read inputs, score, solve)."""
    running = next(i for i in range(len(replicas.ports)) if replicas.running(i))
    with replicas.api(running) as api:
        started = time.perf_counter()
        response = api.get("/plans/draft", timeout=httpx.Timeout(900))
        seconds = time.perf_counter() - started
    response.raise_for_status()
    body = response.json()
    return {"seconds": round(seconds, 2), "assignments": len(body.get("assignments", []))}


def _fleet(n: int) -> list[tuple[str, str]]:
    rng = random.Random(16)
    classes = rng.choices(list(CLASS_MIX), weights=list(CLASS_MIX.values()), k=n)
    return [(f"sim-{i:05d}", device_class) for i, device_class in enumerate(classes)]


def _broker(workdir: Path, device_port: int) -> MosquittoBroker:
    """Mosquitto with the config, logins and ACLs the controller generated (no anonymous access).

    Devices use the device listener; the replicas log in on the loopback controller
    listener. Enrollment sends it SIGHUP (its pid file) to re-read the logins.
    """
    return MosquittoBroker(
        workdir / "mosquitto",
        port=device_port,
        generated_config=workdir / "controller" / "broker" / "mosquitto.conf",
        extra_config=[f"pid_file {workdir / 'mosquitto' / 'mosquitto.pid'}"],
    )


def _play(devices: list[SimDevice], port: int, timers: Timers) -> tuple[list[mp.Process], Any]:
    results: Any = mp.get_context("spawn").Queue()
    workers = []
    for start in range(0, len(devices), DEVICES_PER_WORKER):
        chunk = devices[start : start + DEVICES_PER_WORKER]
        process = mp.get_context("spawn").Process(
            target=run_worker, args=(chunk, "127.0.0.1", port, timers, results), daemon=True
        )
        process.start()
        workers.append(process)
    return workers, results


SEQ_SPAN = 10_000_000
"""Each phase's devices number their messages from ``phase * SEQ_SPAN``, so phases never collide."""


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Enroll once, then one phase per replica count (the same fleet); each phase's measurements."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # Mosquitto holds a socket each
    workdir = Path(tempfile.mkdtemp(prefix="edgefleet-fleet-sim-"))
    postgres = TempPostgres().start()
    database_url = postgres.create_database("fleet")
    engine = create_db_engine(database_url)
    group = ProcessGroup()
    device_port, controller_port = free_port(), free_port()
    broker = _broker(workdir, device_port)
    replicas = ControllerReplicas(
        workdir, group, database_url=database_url,
        broker_url=f"mqtt://127.0.0.1:{controller_port}", classes_dir=CLASSES_DIR,
        count=max(args.replicas), mosquitto_listener_port=str(device_port),
        mosquitto_listener_bind="127.0.0.1", mosquitto_controller_port=str(controller_port),
        mosquitto_pid_file=str(workdir / "mosquitto" / "mosquitto.pid"),
    )  # fmt: skip
    enrollment = Enrollment(engine, ControllerSettings(**replicas.settings))  # type: ignore[arg-type]
    phases = []
    try:
        migrate(engine)
        enrollment.sync_broker_files()  # the controller's login; the devices' follow
        broker.start()
        _start_replicas(replicas, 1)
        _import_models(replicas, workdir)
        devices, enroll_rates = provision(
            replicas, _fleet(args.devices), through_api=min(args.api_enroll, args.devices)
        )
        setup_s = wait_subscribed(devices[0], broker.port, engine, seq=SEQ_SPAN)
        for phase, count in enumerate(args.replicas, start=1):
            _start_replicas(replicas, count)
            out = _phase(args, replicas, broker, engine, devices, seq_base=phase * SEQ_SPAN)
            setup = {"devices": args.devices, "replicas": count, "enroll": enroll_rates}
            setup["ingest_subscribed_after_s"] = setup_s
            phases.append(setup | out)
            print(json.dumps(_printable(phases[-1]), indent=2), flush=True)
        stored = stored_pairs(engine)  # messages that came in after their phase was counted
        for phase in phases:
            phase["lost_at_end"] = len(phase.pop("acked_pairs") - stored)
    finally:
        group.stop()
        broker.stop()
        engine.dispose()
        postgres.stop()
    return phases


def wait_subscribed(device: SimDevice, port: int, engine: Engine, seq: int) -> float:
    """Publish a probe heartbeat as ``device`` until ingest stores it; the seconds it took.

    Messages published before the controller's first subscription exist nowhere to be
    queued, so the devices must not start before it (the controller retries its first
    connect with a backoff of up to 30 s while the broker is not there yet). Every
    retry sends the same bytes: a new envelope under the same seq (a new ``sent_at``)
    is a reused seq, which ingest dead-letters as ``seq_conflict`` once one copy is in.
    """
    from paho.mqtt.client import Client
    from paho.mqtt.enums import CallbackAPIVersion

    from shared.messages import HeartbeatBody, encode, make_envelope
    from shared.topics import TopicKind, Topics

    started = time.monotonic()
    client = Client(CallbackAPIVersion.VERSION2, client_id=device.device_id)
    client.username_pw_set(device.device_id, device.password)
    client.connect("127.0.0.1", port)
    client.loop_start()
    topic = Topics().device(device.device_id, TopicKind.HEARTBEAT)
    body = HeartbeatBody(uptime_s=0, load_1m=0, mem_available_mb=1)
    payload = encode(make_envelope(device.device_id, seq, body))
    try:
        while time.monotonic() - started < 120:
            client.publish(topic, payload, qos=1)
            time.sleep(1)
            with Session(engine) as session:
                stored = session.get(db.IngestedMessage, (device.device_id, seq))
            if stored is not None:
                return round(time.monotonic() - started, 1)
    finally:
        client.disconnect()
        client.loop_stop()
    raise RuntimeError("ingest did not store a probe message within 120 s")


def _printable(phase: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in phase.items() if k != "acked_pairs"}


def _phase(
    args: argparse.Namespace,
    replicas: ControllerReplicas,
    broker: MosquittoBroker,
    engine: Engine,
    devices: list[SimDevice],
    *,
    seq_base: int,
) -> dict[str, Any]:
    timers = Timers(
        heartbeat_s=args.heartbeat_s, metrics_s=args.metrics_s, churn_per_hour=args.churn,
        ramp_s=args.ramp_s, run_s=args.run_s, seq_base=seq_base,
    )  # fmt: skip
    out: dict[str, Any] = {}
    pids = [c.process.pid for c in replicas.children if c is not None and c.running]
    sampler = Sampler(pids, broker_pid=broker._process.pid).start()  # type: ignore[union-attr]  # noqa: SLF001
    started = time.monotonic()
    workers, results = _play(devices, broker.port, timers)
    target = int(0.9 * len(devices))
    while _online(engine) < target and time.monotonic() - started < timers.ramp_s + 180:
        time.sleep(2)
    out["online_after_s"] = round(time.monotonic() - started, 1)
    out["devices_online"] = _online(engine)
    out["devices_p99_ms"] = http_p99(replicas, "/devices", {"limit": 100}, n=args.http_n)
    out["dashboard_refresh_p99_ms"] = http_p99(replicas, "dashboard", {}, n=args.http_n // 10)
    out["commands"] = command_round_trip(replicas, devices, n=min(100, len(devices)))
    out["devices_online_after_measuring"] = _online(engine)
    if args.kill:
        out["kill"] = kill_and_restart_leader(replicas, engine, restart_after_s=10)
    # The figures above describe a live fleet only if the devices were still running.
    out["measured_within_run"] = time.monotonic() - started < timers.ramp_s + timers.run_s
    tallies: list[Tally] = [results.get() for _ in workers]
    for worker in workers:
        worker.join(60)
    out["load"] = sampler.stop()
    acked = {pair for tally in tallies for pair in tally.acked}
    out["drain_s"] = wait_drained(engine, len(acked), seq_base=seq_base)
    stored = {p for p in stored_pairs(engine) if seq_base < p[1] <= seq_base + SEQ_SPAN}
    out["sent"], out["stored"] = len(acked), len(stored)
    out["lost"], out["extra"] = len(acked - stored), len(stored - acked)
    out["lost_sample"] = sorted(acked - stored)[:5]
    out["acked_pairs"] = acked  # for the recount after the last phase; not printed
    with Session(engine) as session:
        out["dead_letters"] = dict(
            session.exec(
                select(db.DeadLetter.reason, func.count()).group_by(db.DeadLetter.reason)
            ).all()
        )  # type: ignore[call-overload]
    out["wills"] = sum(t.wills for t in tallies)
    out["connects"] = sum(t.connects for t in tallies)
    out["connect_failures"] = sum(t.connect_failures for t in tallies)
    out["ingest_lag_ms"] = ingest_lag(engine, seq_base=seq_base)
    out["plan"] = _time_plan(replicas)
    return out


def main() -> None:
    """Parse arguments, run, print the measurements (and write them as JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument(
        "--replicas", type=int, nargs="+", default=[1], help="one phase per count, e.g. 1 2"
    )
    parser.add_argument("--kill", action="store_true", help="SIGKILL the lease holder mid-run")
    parser.add_argument("--heartbeat-s", type=float, default=30.0)
    parser.add_argument("--metrics-s", type=float, default=60.0)
    parser.add_argument("--churn", type=float, default=6.0, help="power cuts per device-hour")
    parser.add_argument("--ramp-s", type=float, default=60.0, help="devices connect over this")
    parser.add_argument("--run-s", type=float, default=180.0)
    parser.add_argument("--http-n", type=int, default=200, help="requests per latency figure")
    parser.add_argument(
        "--api-enroll", type=int, default=200,
        help="devices enrolled one at a time (timed); the rest in bulk (POST /devices/bulk)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    phases = run(args)
    print(json.dumps([{k: p[k] for k in ("replicas", "lost_at_end")} for p in phases]))
    if args.json:
        args.json.write_text(json.dumps(phases, indent=2))


if __name__ == "__main__":
    main()
