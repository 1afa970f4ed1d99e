"""Fault table: what a device sent, what the broker acknowledged, what the controller stored.

Each fault hits a real ``edgefleet controller run`` (defaults, SQLite) while
one enrolled device publishes numbered QoS 1 heartbeats at ``--rate`` msg/s.
After the fault the device stops; the controller (or broker) comes back and
we wait until every acknowledged seq is stored, or ``--settle`` seconds pass.
Recovery time: from the fault to the last acknowledged message stored.

    python bench/faults.py --reps 5 --json faults.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controller.demo.local_fleet import poll  # noqa: E402
from tests.support.controller_process import ControllerProcess  # noqa: E402
from tests.support.load import LoadPublisher  # noqa: E402
from tests.support.ports import wait_for_port  # noqa: E402

DEVICE = "pi-fault-01"


def _kill_controller(controller: ControllerProcess) -> None:
    controller.kill()
    controller.start()


def _signal_broker(signum: int) -> Callable[[ControllerProcess], None]:
    def fault(controller: ControllerProcess) -> None:
        pid_file = controller.workdir / "controller" / "broker" / "mosquitto.pid"
        os.kill(int(pid_file.read_text()), signum)

    return fault


FAULTS: dict[str, tuple[dict[str, str], Callable[[ControllerProcess], None]]] = {
    "controller SIGKILL, supervised Mosquitto": ({}, _kill_controller),
    "controller SIGKILL, embedded amqtt": ({"local_broker": "embedded"}, _kill_controller),
    "broker SIGTERM (supervisor restarts it)": ({}, _signal_broker(signal.SIGTERM)),
    "broker SIGKILL (supervisor restarts it)": ({}, _signal_broker(signal.SIGKILL)),
}


def run_fault(name: str, reps: int, rate: float, settle: float, seed: int) -> dict[str, Any]:
    settings, fault = FAULTS[name]
    rng = random.Random(seed)
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgefleet-fault-") as tmp:
        controller = ControllerProcess(Path(tmp), **settings).start()
        try:
            password = controller.enroll(DEVICE)
            next_seq = 1
            for _ in range(reps):
                publisher = LoadPublisher(
                    DEVICE, password, controller.broker_port, rate=rate, first_seq=next_seq
                ).start()
                time.sleep(rng.uniform(0.3, 2.5))
                hit = time.monotonic()
                fault(controller)
                publisher.stop()
                next_seq = publisher.next_seq
                acked = publisher.acked
                try:
                    poll(lambda: acked <= controller.stored_seqs(DEVICE), settle)  # noqa: B023
                    recovery = time.monotonic() - hit
                except TimeoutError:
                    recovery = float("nan")
                stored = acked & controller.stored_seqs(DEVICE)
                rows.append(
                    {
                        "sent": len(publisher.sent),
                        "acked": len(acked),
                        "stored": len(stored),
                        "lost": len(acked) - len(stored),
                        "recovery_s": round(recovery, 2),
                    }
                )
                wait_for_port(controller.broker_port, timeout=60)  # a restarted broker is back
                poll(lambda: controller.healthz()["ingest"] == "ok", 60)
        finally:
            controller.stop()
    return {"fault": name, "rate": rate, "reps": rows}


def _row(result: dict[str, Any]) -> str:
    reps = result["reps"]
    total = {key: sum(r[key] for r in reps) for key in ("sent", "acked", "stored", "lost")}
    recoveries = [r["recovery_s"] for r in reps if r["recovery_s"] == r["recovery_s"]]
    recovery = (
        f"{statistics.median(recoveries):.1f}, {max(recoveries):.1f}" if recoveries else "never"
    )
    return (
        f"| {result['fault']} ({len(reps)}x at {result['rate']:.0f} msg/s) | {total['sent']} | "
        f"{total['acked']} | {total['stored']} | {total['lost']} | {recovery} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--rate", type=float, default=2000.0, help="messages per second")
    parser.add_argument("--settle", type=float, default=60.0, help="seconds to wait for stores")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--only", choices=list(FAULTS), action="append")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print("| fault | sent | acked | stored | lost | recovery s (median, max) |", flush=True)
    print("|---|---|---|---|---|---|", flush=True)
    results = []
    for name in args.only or list(FAULTS):
        result = run_fault(name, args.reps, args.rate, args.settle, args.seed)
        results.append(result)
        print(_row(result), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
