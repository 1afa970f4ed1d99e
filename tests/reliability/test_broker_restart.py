"""The supervised Mosquitto stopped under load: restarted by the controller, nothing lost.

SIGTERM is what a package upgrade or an operator sends; Mosquitto saves its
state, the supervisor starts it again, and device and ingest reconnect.
"""

from __future__ import annotations

import os
import signal
import time

from controller.demo.local_fleet import poll
from tests.support.controller_process import ControllerProcess
from tests.support.load import LoadPublisher

DEVICE = "pi-restart-01"


def _broker_pid(controller: ControllerProcess) -> int:
    return int((controller.workdir / "controller" / "broker" / "mosquitto.pid").read_text())


def test_a_stopped_broker_is_restarted_and_loses_nothing_acknowledged(
    controller: ControllerProcess,
) -> None:
    password = controller.enroll(DEVICE)
    first_pid = _broker_pid(controller)
    publisher = LoadPublisher(DEVICE, password, controller.broker_port, rate=1000).start()
    time.sleep(1.0)
    stopped = time.monotonic()
    os.kill(first_pid, signal.SIGTERM)
    publisher.stop()
    acked = publisher.acked
    assert acked
    poll(lambda: _broker_pid(controller) != first_pid, 30)
    poll(lambda: acked <= controller.stored_seqs(DEVICE), 60)
    poll(lambda: controller.healthz()["ingest"] == "ok", 60)
    recovery_s = time.monotonic() - stopped
    # and the restarted broker takes new messages from the same device
    again = LoadPublisher(
        DEVICE, password, controller.broker_port, rate=200, first_seq=publisher.next_seq
    ).start()
    poll(lambda: len(again.acked) >= 50, 30)
    again.stop()
    later = again.acked
    poll(lambda: later <= controller.stored_seqs(DEVICE), 30)
    print(
        f"sent {len(publisher.sent)}, acked {len(acked)}, all stored; recovery {recovery_s:.1f} s"
    )
