"""A fleet on this machine: ``edgefleet controller run`` and ``edgefleet agent run`` processes.

The controller runs with its defaults (embedded MQTT broker, SQLite file) in
``workdir``; agents are enrolled through the API (each gets its own MQTT
login) and started with a config file of their own. Everything after the
start goes through HTTP, as it would for an operator: the API with a token,
each agent's local chat API. The demo (``edgefleet demo fleet``) and the
end-to-end tests use this class.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import yaml

from controller.demo.ports import free_port
from controller.demo.processes import Child, ProcessGroup, python_command

AGENT_DEFAULTS: dict[str, Any] = {
    "heartbeat_interval_s": 2.0,
    "metrics_interval_s": 2.0,  # a rollout wave waits for the first metrics after the ack
    "reconnect_min_s": 0.2,
    "reconnect_max_s": 2.0,
    "mqtt_protocol": "3.1.1",  # the embedded broker speaks 3.1.1: no 3 s probe for MQTT 5
    "gpio_mock": True,
    "chat_enabled": True,
}
"""Agent settings for a local fleet: short timers, so the demo does not wait on them."""

API_TIMEOUT_S = 60.0
"""The longest API call of a fleet: importing a model hashes the whole file."""


def poll(
    probe: Callable[[], Any], timeout: float, *, between: Callable[[], None] | None = None
) -> Any:
    """``probe()``'s first truthy value (an HTTP error counts as not yet); TimeoutError if none.

    ``between`` runs after each miss and may raise to give up early (a process died).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = probe()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        if between is not None:
            between()
        time.sleep(0.2)
    raise TimeoutError


class FleetError(RuntimeError):
    """A step of the local fleet failed; the message says which, with the processes' logs."""


class LocalFleet:
    """The controller process, its API, and the agents started against it."""

    def __init__(
        self,
        workdir: Path,
        classes_dir: Path,
        *,
        admin_token: str,
        api_port: int = 0,
        env: Mapping[str, str],
        controller_env: Mapping[str, str] | None = None,
        agent_defaults: Mapping[str, Any] | None = None,
    ) -> None:
        self.workdir, self.classes_dir, self.env = workdir, classes_dir, dict(env)
        self.api_port = api_port or free_port()
        self.broker_port = free_port()
        self.url = f"http://127.0.0.1:{self.api_port}"
        self.agent_defaults = dict(AGENT_DEFAULTS if agent_defaults is None else agent_defaults)
        self.group = ProcessGroup()
        self.logs: list[Path] = []
        self.agents: dict[str, subprocess.Popen[bytes]] = {}
        self.chat_ports: dict[str, int] = {}
        self._clients: list[httpx.Client] = []
        self.api = self.client(admin_token)
        self.controller = self._start_controller(admin_token, controller_env or {})

    def __enter__(self) -> LocalFleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def db_file(self) -> Path:
        """The controller's SQLite database."""
        return self.workdir / "controller" / "controller.db"

    def _start_controller(self, admin_token: str, extra: Mapping[str, str]) -> Child:
        settings = {
            "DATA_DIR": str(self.workdir / "controller"),
            "API_PORT": str(self.api_port),
            "EMBEDDED_BROKER_PORT": str(self.broker_port),
            "BOOTSTRAP_ADMIN_TOKEN": admin_token,
            "DEVICE_CLASSES_DIR": str(self.classes_dir),
            "PUBLIC_URL": self.url,
            "PLANNER_INTERVAL_S": "0.3",
            **{key.upper(): value for key, value in extra.items()},
        }
        env = {**self.env, **{f"EDGEFLEET_CONTROLLER_{k}": v for k, v in settings.items()}}
        return self._start("controller", python_command("controller", "run"), self.workdir, env)

    def _start(self, name: str, argv: list[str], home: Path, env: Mapping[str, str]) -> Child:
        log = home / f"{name.split(':')[0]}.log"
        if log not in self.logs:
            self.logs.append(log)
        return self.group.start(name, argv, log=log, env=env, cwd=self.workdir)

    def client(self, token: str) -> httpx.Client:
        """An API client (``/api/v1``) that sends ``token``; :meth:`stop` closes it."""
        client = httpx.Client(
            base_url=self.url + "/api/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=API_TIMEOUT_S,
        )
        self._clients.append(client)
        return client

    def wait(self, probe: Callable[[], Any], timeout: float, what: str) -> Any:
        """Poll ``probe`` until it returns something truthy; else fail with the logs' tails."""
        try:
            return poll(probe, timeout, between=lambda: self._check_controller(what))
        except TimeoutError:
            message = f"timed out after {timeout:.0f} s waiting for {what}"
            raise FleetError(f"{message}\n{self.log_tails()}") from None

    def _check_controller(self, what: str) -> None:
        if not self.controller.running:
            code = self.controller.process.returncode
            raise FleetError(f"the controller exited ({code}) before {what}\n{self.log_tails()}")

    def log_tails(self, chars: int = 3000) -> str:
        """The end of every process's log, for error messages."""
        tails = [
            f"--- {p}\n{p.read_text(errors='replace')[-chars:]}" for p in self.logs if p.exists()
        ]
        return "\n".join(tails) if self.logs else "(no logs)"

    def healthy(self) -> bool:
        """Whether the controller's API answers ``/healthz``."""
        return httpx.get(self.url + "/healthz", timeout=2).status_code == 200

    def enroll_device(self, device_id: str, device_class: str, api: httpx.Client) -> str:
        """Enroll a device through the API; return its MQTT password (shown only once)."""
        response = api.post("/devices", json={"id": device_id, "device_class": device_class})
        if response.status_code != 201:
            raise FleetError(f"enrolling {device_id}: {response.status_code} {response.text}")
        return str(response.json()["credentials"]["password"])

    def start_agent(
        self, device_id: str, device_class: str, password: str, **overrides: Any
    ) -> None:
        """Start ``agent run`` with its MQTT login and a chat API (``overrides``: agent config)."""
        home = self.workdir / device_id
        home.mkdir(parents=True)
        self.chat_ports[device_id] = free_port()
        config = {
            **self.agent_defaults,
            "device_id": device_id,
            "device_class": device_class,
            "profiles_dir": str(self.classes_dir),
            "broker_url": f"mqtt://127.0.0.1:{self.broker_port}",
            "mqtt_username": device_id,
            "mqtt_password": password,
            "controller_url": self.url,
            "data_dir": str(home / "data"),
            "chat_port": self.chat_ports[device_id],
            **overrides,
        }
        (home / "agent.yaml").write_text(yaml.safe_dump(config))
        self.restart_agent(device_id)

    def restart_agent(self, device_id: str) -> None:
        """Start a device's agent (again) with its config file, data and log."""
        home = self.workdir / device_id
        argv = python_command("agent", "run", "--config", str(home / "agent.yaml"))
        self.agents[device_id] = self._start(f"agent:{device_id}", argv, home, self.env).process

    def online(self, device_ids: set[str]) -> bool:
        """Whether the controller has every one of ``device_ids`` online."""
        items = self.api.get("/devices", params={"limit": 500}).json()["items"]
        return {d["id"] for d in items if d["status"] == "online"} >= device_ids

    def send(self, device_id: str, command: dict[str, Any], api: httpx.Client | None = None) -> str:
        """Send one command through the API; return its id."""
        body = {"device_id": device_id, "command": command}
        response = (api or self.api).post("/commands", json=body)
        if response.status_code != 202:
            raise FleetError(f"command to {device_id}: {response.status_code} {response.text}")
        return str(response.json()["commands"][0]["id"])

    def ack_statuses(self, command_id: str) -> list[str]:
        """The statuses of the acks the controller stored for a command."""
        detail = self.api.get(f"/commands/{command_id}").json()
        return [a["status"] for a in detail["acks"]]

    def chat(self, device_id: str, body: dict[str, Any], timeout: float = 120) -> dict[str, Any]:
        """POST a chat completion to the device's local chat API; the decoded answer."""
        url = f"http://127.0.0.1:{self.chat_ports[device_id]}/v1/chat/completions"
        response = httpx.post(url, json=body, timeout=timeout)
        if response.status_code != 200:
            raise FleetError(f"{device_id}'s chat API: {response.status_code} {response.text}")
        return dict(response.json())

    def stop(self) -> None:
        """Stop every process (agents first, the controller last); close the API clients."""
        for client in self._clients:
            client.close()
        self.group.stop()
