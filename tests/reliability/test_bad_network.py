"""Delay, loss and partitions between the agent and the broker, through a TCP proxy.

``tc netem`` is not in this kernel (see :mod:`tests.support.netproxy`), so the
device's real link talks to the controller's Mosquitto through a proxy that
delays every chunk 50-150 ms, cuts connections or lets them stall silently
(caught by the 5 s keepalive), and once partitions the device for 5 s. After
the network heals, every heartbeat the device queued must be stored exactly
once and confirmed, and its outbox empty.
"""

from __future__ import annotations

import time
from pathlib import Path

from controller.demo.local_fleet import poll
from tests.support.controller_process import ControllerProcess
from tests.support.device_link import DeviceLink
from tests.support.netproxy import Conditions, NetProxy

DEVICE = "pi-lossy-01"
RATE = 50.0
SECONDS = 20.0


def test_a_bad_network_stores_everything_once(
    controller: ControllerProcess, tmp_path: Path
) -> None:
    password = controller.enroll(DEVICE)
    proxy = NetProxy(controller.broker_port, seed=7)
    device = DeviceLink(
        tmp_path / "device",
        device_id=DEVICE,
        mqtt_username=DEVICE,
        mqtt_password=password,
        broker_url=f"mqtt://127.0.0.1:{proxy.port}",
        keepalive_s=5,
    )
    try:
        device.connect()
        assert device.link is not None and device.link.wait_connected(30)
        proxy.conditions = Conditions(
            delay_s=0.05, jitter_s=0.1, cut_probability=0.01, stall_probability=0.005
        )
        started = time.monotonic()
        device.start_load(RATE)
        time.sleep(SECONDS / 2)
        proxy.partition(5.0)
        time.sleep(SECONDS / 2)
        device.stop_load()
        proxy.conditions = Conditions()  # the network heals
        healed = time.monotonic()
        sent = set(device.sent)
        try:
            poll(lambda: sent <= controller.stored_seqs(DEVICE), 120)
            poll(lambda: device.outbox.depth() + device.outbox.unconfirmed() == 0, 60)
        except TimeoutError:
            pass
        recovery_s = time.monotonic() - healed
        stored = controller.stored_seqs(DEVICE)
        print(
            f"sent {len(sent)}, broker-acked {len(device.outbox.broker_acked)}, "
            f"stored {len(sent & stored)}, heartbeat rows {controller.heartbeat_rows(DEVICE)}, "
            f"cuts {proxy.cuts}, stalls {proxy.stalls}, connections {proxy.connections}, "
            f"load {healed - started:.1f} s, recovery {recovery_s:.1f} s"
        )
        assert proxy.cuts + proxy.stalls > 0, "the network never misbehaved"
        assert sent <= stored, f"{len(sent - stored)} of {len(sent)} never stored"
        assert controller.heartbeat_rows(DEVICE) == len(sent)  # each stored once
        assert device.outbox.depth() + device.outbox.unconfirmed() == 0
    finally:
        device.close()
        proxy.close()
