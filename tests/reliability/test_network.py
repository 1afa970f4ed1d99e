"""A partition between a device and the broker (network namespace + veth, link down 5 s).

The device publishes from its own network namespace over a veth pair; for
5 s the link is down. Everything it sent must be acknowledged once the link
is back, and every acknowledged message stored. Delay and loss are in
``test_bad_network.py``, through a TCP proxy: ``tc netem``'s qdisc is not in this
kernel (``tc qdisc add ... netem`` answers "Specified qdisc kind is unknown").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.demo.local_fleet import poll
from tests.support.controller_process import ROOT, ControllerProcess

DEVICE = "pi-net-01"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def netns() -> Iterator[tuple[str, str, str]]:
    """(namespace, host-side interface, host address); needs root and ``ip netns``."""
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    tag = uuid.uuid4().hex[:6]
    ns, host_if, dev_if = f"ef-{tag}", f"efh{tag}", f"efd{tag}"
    octet = int(tag[:2], 16) % 200 + 20
    host_ip, dev_ip = f"10.231.{octet}.1", f"10.231.{octet}.2"
    _ip("netns", "add", ns)
    try:
        _ip("link", "add", host_if, "type", "veth", "peer", "name", dev_if)
        _ip("link", "set", dev_if, "netns", ns)
        _ip("addr", "add", f"{host_ip}/24", "dev", host_if)
        _ip("link", "set", host_if, "up")
        _ip("-n", ns, "addr", "add", f"{dev_ip}/24", "dev", dev_if)
        _ip("-n", ns, "link", "set", dev_if, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        yield ns, host_if, host_ip
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_a_partition_loses_nothing_acknowledged(
    tmp_path: Path, netns: tuple[str, str, str]
) -> None:
    ns, host_if, host_ip = netns
    controller = ControllerProcess(tmp_path, embedded_broker_host=host_ip).start()
    try:
        password = controller.enroll(DEVICE)
        device = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-m", "tests.support.load",
             "--device", DEVICE, "--password", password, "--host", host_ip,
             "--port", str(controller.broker_port), "--rate", "50", "--seconds", "14",
             "--drain", "90"],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(5)
        _ip("link", "set", host_if, "down")
        time.sleep(5)
        _ip("link", "set", host_if, "up")
        healed = time.monotonic()
        out, err = device.communicate(timeout=150)
        assert device.returncode == 0, err[-3000:]
        result = json.loads(out.strip().splitlines()[-1])
        sent, acked = result["sent"], set(result["acked"])
        assert result["drained"], f"{len(sent) - len(acked)} of {len(sent)} never acknowledged"
        poll(lambda: acked <= controller.stored_seqs(DEVICE), 60)
        print(
            f"sent {len(sent)}, acked {len(acked)}, all stored; "
            f"{time.monotonic() - healed:.1f} s after the partition healed"
        )
    finally:
        controller.stop()
