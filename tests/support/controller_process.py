"""One real ``edgefleet controller run`` process that a test can SIGKILL and start again.

Its data dir (SQLite, broker files, Mosquitto's persistence) and ports stay
the same across restarts, as they would for a service manager restarting it.
"""

from __future__ import annotations

import os
import signal
import sqlite3
from collections.abc import Mapping
from pathlib import Path

import httpx

from controller.demo.local_fleet import poll
from controller.demo.ports import free_port
from controller.demo.processes import Child, ProcessGroup, python_command

ROOT = Path(__file__).resolve().parents[2]
ADMIN = "eft_reliability-admin-" + "r" * 24


class ControllerProcess:
    """``controller run`` with defaults (local broker, SQLite) in ``workdir``."""

    def __init__(self, workdir: Path, **settings: str) -> None:
        self.workdir = workdir
        self.api_port = free_port()
        self.broker_port = free_port()
        self.url = f"http://127.0.0.1:{self.api_port}"
        self.settings = {
            "DATA_DIR": str(workdir / "controller"),
            "API_PORT": str(self.api_port),
            "EMBEDDED_BROKER_PORT": str(self.broker_port),
            "BOOTSTRAP_ADMIN_TOKEN": ADMIN,
            "PLANNER_LOOP": "false",
            **{key.upper(): value for key, value in settings.items()},
        }
        self.group = ProcessGroup()
        self.child: Child | None = None
        self.api = httpx.Client(
            base_url=self.url + "/api/v1", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30
        )

    @property
    def db_file(self) -> Path:
        """The controller's SQLite database."""
        return self.workdir / "controller" / "controller.db"

    def start(self, timeout: float = 60.0) -> ControllerProcess:
        """Start the process and wait until ``/healthz`` answers."""
        env: Mapping[str, str] = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            **{f"EDGEFLEET_CONTROLLER_{k}": v for k, v in self.settings.items()},
        }
        argv = python_command("controller", "run")
        self.child = self.group.start(
            "controller", argv, log=self.workdir / "controller.log", env=env, cwd=self.workdir
        )
        try:
            poll(self._healthz_answers, timeout)
        except TimeoutError:
            raise AssertionError(f"controller did not start:\n{self.log_tail()}") from None
        return self

    def _healthz_answers(self) -> bool:
        if self.child is not None and not self.child.running:
            raise AssertionError(f"controller exited:\n{self.log_tail()}")
        return httpx.get(self.url + "/healthz", timeout=2).status_code in (200, 503)

    def healthz(self) -> dict[str, object]:
        """The ``/healthz`` answer."""
        return dict(httpx.get(self.url + "/healthz", timeout=5).json())

    def kill(self) -> None:
        """SIGKILL the controller process (nothing of it runs any cleanup)."""
        assert self.child is not None
        os.kill(self.child.process.pid, signal.SIGKILL)
        self.child.process.wait(10)

    def kill_with_broker(self) -> None:
        """SIGKILL the supervised Mosquitto and the controller together (a power cut):
        the broker gets no SIGTERM to save its state on."""
        assert self.child is not None
        pid = self.child.process.pid
        children = [
            int(child)
            for task in Path(f"/proc/{pid}/task").iterdir()
            for child in (task / "children").read_text().split()
        ]
        assert children, "the controller runs no broker child"
        for child in children:
            os.kill(child, signal.SIGKILL)
        self.kill()

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the controller's log."""
        path = self.workdir / "controller.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"

    def enroll(self, device_id: str) -> str:
        """Enroll a device through the API; its MQTT password."""
        response = self.api.post("/devices", json={"id": device_id})
        assert response.status_code == 201, response.text
        return str(response.json()["credentials"]["password"])

    def stored_seqs(self, device_id: str) -> set[int]:
        """The seqs ingest has stored for ``device_id`` (read from the database file)."""
        with sqlite3.connect(self.db_file, timeout=30) as conn:
            rows = conn.execute(
                "SELECT seq FROM ingested_message WHERE device_id = ?", (device_id,)
            ).fetchall()
        return {int(seq) for (seq,) in rows}

    def heartbeat_rows(self, device_id: str) -> int:
        """How many heartbeat rows are stored for ``device_id`` (duplicates would show here)."""
        with sqlite3.connect(self.db_file, timeout=30) as conn:
            (count,) = conn.execute(
                "SELECT COUNT(*) FROM heartbeat WHERE device_id = ?", (device_id,)
            ).fetchone()
        return int(count)

    def stop(self) -> None:
        """Stop the process (and what it started); close the API client."""
        self.api.close()
        self.group.stop()
