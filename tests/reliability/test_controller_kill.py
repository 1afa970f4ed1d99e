"""kill -9 of the controller under load loses nothing the broker acknowledged (finding 2).

A device publishes QoS 1 heartbeats at 2,000 msg/s; the controller is
SIGKILLed at a random moment, started again, and every seq the broker
PUBACKed must end up in the database. With the embedded broker this lost
26 % (its queue died with the process); the default broker is now a
supervised Mosquitto with persistence.
"""

from __future__ import annotations

import random
import time

from controller.demo.local_fleet import poll
from tests.support.controller_process import ControllerProcess
from tests.support.load import LoadPublisher

RATE = 2000.0
REPETITIONS = 5
DEVICE = "pi-load-01"


def test_kill_9_under_load_loses_no_acknowledged_message(controller: ControllerProcess) -> None:
    assert controller.healthz()["status"] == "ok"
    password = controller.enroll(DEVICE)
    rng = random.Random(12)
    next_seq = 1
    report = []
    for repetition in range(REPETITIONS):
        publisher = LoadPublisher(
            DEVICE, password, controller.broker_port, rate=RATE, first_seq=next_seq
        ).start()
        time.sleep(rng.uniform(0.3, 2.5))
        controller.kill()
        publisher.stop()
        next_seq = publisher.next_seq
        assert publisher.acked, "the broker acknowledged nothing before the kill"
        acked = set(publisher.acked)
        restarted = time.monotonic()
        controller.start()
        try:
            poll(lambda: acked <= controller.stored_seqs(DEVICE), 90)  # noqa: B023
        except TimeoutError:
            pass
        recovery_s = time.monotonic() - restarted
        lost = acked - controller.stored_seqs(DEVICE)
        report.append((len(publisher.sent), len(publisher.acked), len(lost), recovery_s))
        assert not lost, (
            f"repetition {repetition}: {len(lost)} of {len(publisher.acked)} acknowledged "
            f"messages lost (sent {len(publisher.sent)})\n{controller.log_tail()}"
        )
    print("sent/acked/lost/recovery_s per repetition:", report)
