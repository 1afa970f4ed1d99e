"""The controller's disk fills up under load: nothing acknowledged is lost, it catches up.

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

from controller.demo.local_fleet import poll
from tests.controller.api.conftest import start_api
from tests.support.controller_process import ControllerProcess
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
