"""Disks fill up under load: nothing acknowledged is lost, and everything catches up.

The data dir (SQLite, broker files, Mosquitto's persistence) is a small tmpfs;
a filler file takes the rest. Ingest cannot commit, so it acknowledges
nothing and the broker keeps the messages; once space is freed, all are
stored.
"""

from __future__ import annotations

import errno
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.link.outbox import OutboxFull
from controller.demo.local_fleet import poll
from shared.topics import TopicKind
from tests.controller.api.conftest import start_api
from tests.support.controller_process import ControllerProcess
from tests.support.device_link import DeviceLink
from tests.support.load import LoadPublisher

DEVICE = "pi-disk-01"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 MB tmpfs (mounting needs root; elsewhere this test cannot run)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(path: Path) -> None:
    with path.open("wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 1_048_576)
                handle.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


def test_a_full_disk_delays_ingest_but_loses_nothing(small_disk: Path) -> None:
    controller = ControllerProcess(small_disk).start()
    try:
        password = controller.enroll(DEVICE)
        filler = small_disk / "filler"
        _fill(filler)
        publisher = LoadPublisher(DEVICE, password, controller.broker_port, rate=200).start()
        time.sleep(3)
        publisher.stop()
        acked = publisher.acked
        assert len(acked) >= 100
        time.sleep(2)
        stored_while_full = acked & controller.stored_seqs(DEVICE)
        filler.unlink()
        freed = time.monotonic()
        poll(lambda: acked <= controller.stored_seqs(DEVICE), 60)
        print(
            f"acked {len(acked)}, stored while full {len(stored_while_full)}, "
            f"all stored {time.monotonic() - freed:.1f} s after space was freed"
        )
        assert "disk is full" in controller.log_tail(1_000_000)  # the fault really happened
    finally:
        controller.stop()


def test_an_upload_to_a_full_registry_disk_is_refused_and_leaves_no_file(
    small_disk: Path,
) -> None:
    running = start_api(small_disk / "data")
    try:
        with running.client("admin") as client:
            chunks = (
                b"GGUF" + b"\0" * 1_048_572 if i == 0 else b"\0" * 1_048_576 for i in range(96)
            )
            response = client.post(
                "/api/v1/models/upload",
                params={"model_id": "fills-the-disk"},
                content=chunks,
                headers={"content-type": "application/octet-stream"},
            )
            assert response.status_code == 507, response.text
            assert response.json()["error"] == "disk_full"
            assert client.get("/api/v1/models").json()["total"] == 0
        models = running.settings.models_dir
        assert [p for p in models.rglob("*") if p.is_file()] == []
    finally:
        running.server.stop()
        running.engine.dispose()


def _fill_to_the_last_byte(path: Path) -> None:
    """Take every free byte (a megabyte at a time, down to a byte at a time)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for size in (1_048_576, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)


def test_a_full_agent_disk_refuses_new_messages_and_keeps_the_queued_ones(
    small_disk: Path, tmp_path: Path
) -> None:
    """The agent's outbox on a full disk: a clear OutboxFull for new messages, the link keeps
    working, and everything queued before is stored once space is back."""
    controller = ControllerProcess(tmp_path / "ctl").start()
    device_id = "pi-disk-02"
    device = DeviceLink(
        small_disk / "agent",
        device_id=device_id,
        mqtt_username=device_id,
        mqtt_password=controller.enroll(device_id),
        broker_url=f"mqtt://127.0.0.1:{controller.broker_port}",
        confirm_timeout_s=3,  # confirmations the full disk could not record come again soon
    )
    filler = small_disk / "filler"
    try:
        for _ in range(2000):  # queued while the device is offline
            device.send()
        queued = set(device.sent)
        _fill_to_the_last_byte(filler)
        device.start_load(200)
        poll(lambda: device.refused > 0, 60)
        device.stop_load()
        with pytest.raises(OutboxFull, match="free disk space"):
            for _ in range(10_000):
                device.outbox.put_sequenced(TopicKind.HEARTBEAT, "t", lambda _seq: b"x" * 4096)
        sent_while_full = set(device.sent)
        device.connect()  # the link works on a full disk: publishing only reads the outbox
        assert device.link is not None and device.link.wait_connected(30)
        poll(lambda: sent_while_full <= controller.stored_seqs(device_id), 60)
        full_since = time.monotonic()
        filler.unlink()
        device.start_load(50)  # and the agent goes on once space is back
        time.sleep(2)
        device.stop_load()
        sent = set(device.sent)
        poll(lambda: sent <= controller.stored_seqs(device_id), 60)
        poll(lambda: device.outbox.depth() + device.outbox.unconfirmed() == 0, 60)
        print(
            f"queued offline {len(queued)}, sent in all {len(sent)}, refused {device.refused}, "
            f"stored {len(sent & controller.stored_seqs(device_id))}, "
            f"drained {time.monotonic() - full_since:.1f} s after space was freed"
        )
        assert queued <= controller.stored_seqs(device_id)
        assert device.link.connected
    finally:
        device.close()
        controller.stop()
