"""A fleet of real processes: ``controller run`` (embedded broker, SQLite) and ``agent run``s.

End-to-end tests start one :class:`Fleet` per test (the ``fleet`` fixture in
``tests/e2e/conftest.py``, or ``with Fleet(...)``), enroll agents through the
API and drive everything over HTTP with the bootstrap admin token. ``stop``
terminates every process it started, then kills what did not exit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from controller.core.db import create_db_engine, session_scope
from tests.agent.daemon_support import agent_config, agent_process, write_config
from tests.controller.planner.db_world import add_run
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
ADMIN = "eft_e2e-admin-token-" + "z" * 24


def wait_for(probe: Callable[[], Any], timeout: float, what: str, logs: list[Path]) -> Any:
    """Poll ``probe`` until it returns something truthy; on timeout fail with the logs' tails."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = probe()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        time.sleep(0.2)
    tails = "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in logs if p.exists())
    raise AssertionError(f"timed out waiting for {what}\n{tails}")


def judged_quality(db_file: Path) -> None:
    """Write one judged run for m-small and one for the better m-big (``db_world.PCT``).

    A device's bench cannot score quality yet (``BenchCommand`` names no reference
    model), so quality comes from a judge run on the controller's side.
    """
    engine = create_db_engine(f"sqlite:///{db_file}")
    try:
        with session_scope(engine) as session:
            add_run(session, "m-small", "judge", "judge-server", 1)
            add_run(session, "m-big", "judge", "judge-server", 2)
    finally:
        engine.dispose()


class Fleet:
    """The controller process, its API client, and the agents started against it."""

    def __init__(self, tmp_path: Path, classes: Path, **controller_env: str) -> None:
        self.tmp_path, self.classes = tmp_path, classes
        self.api_port, self.broker_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.api_port}"
        self.logs = [tmp_path / "controller.log"]
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "EDGEFLEET_CONTROLLER_DATA_DIR": str(tmp_path / "ctl"),
            "EDGEFLEET_CONTROLLER_API_PORT": str(self.api_port),
            "EDGEFLEET_CONTROLLER_EMBEDDED_BROKER_PORT": str(self.broker_port),
            "EDGEFLEET_CONTROLLER_BOOTSTRAP_ADMIN_TOKEN": ADMIN,
            "EDGEFLEET_CONTROLLER_DEVICE_CLASSES_DIR": str(classes),
            "EDGEFLEET_CONTROLLER_PUBLIC_URL": self.url,
            "EDGEFLEET_CONTROLLER_PLANNER_INTERVAL_S": "0.3",
            **{f"EDGEFLEET_CONTROLLER_{k.upper()}": v for k, v in controller_env.items()},
        }
        self.processes = [
            subprocess.Popen(
                [sys.executable, "-m", "shared.cli", "controller", "run"],
                env=env,
                cwd=ROOT,
                stdout=self.logs[0].open("wb"),
                stderr=subprocess.STDOUT,
            )
        ]
        self.agents: dict[str, subprocess.Popen[bytes]] = {}
        self.api = httpx.Client(
            base_url=self.url + "/api/v1", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30
        )
        self.chat_ports: dict[str, int] = {}

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def db_file(self) -> Path:
        """The controller's SQLite database."""
        return self.tmp_path / "ctl" / "controller.db"

    def healthy(self) -> bool:
        """Whether the controller's API answers ``/healthz``."""
        return httpx.get(self.url + "/healthz", timeout=2).status_code == 200

    def start_agent(
        self, device_id: str, device_class: str, password: str, **overrides: Any
    ) -> None:
        """Start ``agent run`` with its MQTT login and a chat API (``overrides``: agent config)."""
        home = self.tmp_path / device_id
        home.mkdir()
        self.chat_ports[device_id] = free_port()
        config = agent_config(
            home,
            self.broker_port,
            device_id=device_id,
            device_class=device_class,
            profiles_dir=str(self.classes),
            mqtt_username=device_id,
            mqtt_password=password,
            controller_url=self.url,
            chat_enabled=True,
            chat_port=self.chat_ports[device_id],
        )
        config.update(overrides)
        self.logs.append(home / "agent.log")
        self.agents[device_id] = agent_process(write_config(home, config), self.logs[-1])
        self.processes.append(self.agents[device_id])

    def wait(self, probe: Callable[[], Any], timeout: float, what: str) -> Any:
        """:func:`wait_for` with this fleet's logs."""
        return wait_for(probe, timeout, what, self.logs)

    def upload_model(self, model_id: str, path: Path) -> None:
        """Import a GGUF into the controller's registry through the upload route."""
        response = self.api.post(
            "/models/upload",
            params={"model_id": model_id},
            content=path.read_bytes(),
            headers={"Content-Type": "application/octet-stream"},
        )
        assert response.status_code == 201, response.text

    def enroll(self, devices: dict[str, str], **overrides: Any) -> None:
        """Enroll each ``{device_id: device_class}``, start its agent, wait until all are online."""
        for device_id, device_class in devices.items():
            enrolling = {"id": device_id, "device_class": device_class}
            response = self.api.post("/devices", json=enrolling)
            assert response.status_code == 201, response.text
            password = response.json()["credentials"]["password"]
            self.start_agent(device_id, device_class, password, **overrides)

        def online() -> bool:
            items = self.api.get("/devices").json()["items"]
            return {d["id"] for d in items if d["status"] == "online"} >= set(devices)

        self.wait(online, 60, f"{sorted(devices)} online")

    def assign(self, device_id: str, model_id: str, *, refine: bool = False) -> None:
        """Assign a model by hand (not through a plan) and wait for the agent's ok."""
        command = {"type": "assign", "model_id": model_id, "refine": refine}
        command_id = self.send(device_id, command)
        self.wait(lambda: "ok" in self.ack_statuses(command_id), 60, f"{device_id} on {model_id}")

    def chat_model(self, device_id: str) -> str:
        """The model the device's chat API answers with."""
        answer = httpx.post(
            f"http://127.0.0.1:{self.chat_ports[device_id]}/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4},
            timeout=60,
        )
        assert answer.status_code == 200, answer.text
        return str(answer.json()["model"])

    def restart_agent(self, device_id: str) -> None:
        """Start a stopped or killed agent again with its config, data and log."""
        home = self.tmp_path / device_id
        self.agents[device_id] = agent_process(home / "agent.yaml", home / "agent.log")
        self.processes.append(self.agents[device_id])

    def send(self, device_id: str, command: dict[str, Any]) -> str:
        """Send one command through the API; return its id."""
        response = self.api.post("/commands", json={"device_id": device_id, "command": command})
        assert response.status_code == 202, response.text
        return str(response.json()["commands"][0]["id"])

    def ack_statuses(self, command_id: str) -> list[str]:
        """The statuses of the acks the controller stored for a command."""
        detail = self.api.get(f"/commands/{command_id}").json()
        return [a["status"] for a in detail["acks"]]

    def stop(self) -> None:
        """Terminate every process (agents first), kill any that does not exit."""
        self.api.close()
        for process in reversed(self.processes):
            process.terminate()
            process.send_signal(signal.SIGCONT)  # a test may have frozen it
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
