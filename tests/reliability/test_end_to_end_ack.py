"""kill -9 of the controller *and* its Mosquitto under load loses nothing (end-to-end acks).

Mosquitto saves its queue only every ``autosave_interval``, so killing it
with the controller loses what it acknowledged since. The agent's outbox
keeps each message after the PUBACK until the controller confirms its seq
(``stored`` topic) and publishes unconfirmed ones again on reconnect. Each
repetition: the device's real link queues heartbeats at 300 msg/s, both
processes are SIGKILLed at a random moment, the device is stopped, the
controller restarted and left to drain what the broker kept: PUBACKed seqs
missing then are what the broker lost (what the old agent lost for good).
Then the device reconnects: every seq it ever queued must be stored and
confirmed, and its outbox empty.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import httpx

from controller.demo.local_fleet import poll
from tests.support.controller_process import ControllerProcess
from tests.support.device_link import DeviceLink

RATE = 300.0
REPETITIONS = 5
DEVICE = "pi-e2e-01"


def _settled(controller: ControllerProcess, quiet_s: float = 3.0, limit_s: float = 90.0) -> None:
    """Wait until the stored seqs stop changing for ``quiet_s`` (the broker's queue drained)."""
    deadline = time.monotonic() + limit_s
    last, since = controller.stored_seqs(DEVICE), time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - since < quiet_s:
        time.sleep(0.5)
        now = controller.stored_seqs(DEVICE)
        if now != last:
            last, since = now, time.monotonic()


def _confirmations(controller: ControllerProcess) -> float:
    """The controller's ``edgefleet_ingest_confirmations_total`` from ``/metrics``."""
    response = httpx.get(controller.url + "/metrics", headers=controller.api.headers, timeout=10)
    name = "edgefleet_ingest_confirmations_total"
    lines = [x for x in response.text.splitlines() if x.startswith(name)]
    assert lines, f"{response.status_code}: {response.text[:2000]}"
    return float(lines[0].split()[-1])


def test_kill_9_of_controller_and_broker_loses_nothing_acknowledged(
    controller: ControllerProcess, tmp_path: Path
) -> None:
    password = controller.enroll(DEVICE)
    device = DeviceLink(
        tmp_path / "device",
        device_id=DEVICE,
        mqtt_username=DEVICE,
        mqtt_password=password,
        broker_url=f"mqtt://127.0.0.1:{controller.broker_port}",
    )
    rng = random.Random(12)
    report = []
    try:
        for repetition in range(REPETITIONS):
            sent_before, acked_before = set(device.sent), set(device.outbox.broker_acked)
            device.connect()
            assert device.link is not None and device.link.wait_connected(30)
            device.start_load(RATE)
            time.sleep(rng.uniform(1.0, 4.0))
            controller.kill_with_broker()
            device.stop_load()
            device.disconnect()
            acked = device.outbox.broker_acked - acked_before
            confirmed_before = device.outbox.confirmed_seqs & (set(device.sent) - sent_before)
            restarted = time.monotonic()
            controller.start()
            _settled(controller)
            lost_by_broker = acked - controller.stored_seqs(DEVICE)
            device.connect()
            sent = set(device.sent) - sent_before
            try:
                poll(lambda: sent <= controller.stored_seqs(DEVICE), 90)  # noqa: B023
                poll(lambda: device.outbox.depth() + device.outbox.unconfirmed() == 0, 30)
            except TimeoutError:
                pass
            recovery_s = time.monotonic() - restarted
            stored = controller.stored_seqs(DEVICE)
            report.append(
                {
                    "sent": len(sent),
                    "broker_acked": len(acked),
                    "confirmed_before_kill": len(confirmed_before),
                    "lost_by_broker": len(lost_by_broker),
                    "stored": len(sent & stored),
                    "recovery_s": round(recovery_s, 1),
                }
            )
            assert sent, "nothing was queued"
            assert sent <= stored, (
                f"repetition {repetition}: {len(sent - stored)} of {len(sent)} queued messages "
                f"never stored ({len(acked)} acknowledged by the broker)\n{controller.log_tail()}"
            )
            assert device.outbox.depth() + device.outbox.unconfirmed() == 0
            assert sent <= device.outbox.confirmed_seqs  # the controller confirmed every one
            assert _confirmations(controller) > 0
            device.disconnect()
    finally:
        device.close()
    print("per repetition:", report)
    totals = {key: sum(r[key] for r in report) for key in report[0] if key != "recovery_s"}
    print("totals:", totals, "recovery_s:", [r["recovery_s"] for r in report])
    assert totals["broker_acked"] > 0
