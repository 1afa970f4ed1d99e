"""A fleet of real processes for the end-to-end tests: the product's :class:`LocalFleet`.

End-to-end tests start one :class:`Fleet` per test (the ``fleet`` fixture in
``tests/e2e/conftest.py``, or ``with Fleet(...)``), enroll agents through the
API and drive everything over HTTP with the bootstrap admin token. ``stop``
terminates every process it started, then kills what did not exit.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from controller.core.db import create_db_engine, session_scope
from controller.demo.local_fleet import AGENT_DEFAULTS, LocalFleet, poll
from tests.controller.plans.db_world import add_run

ROOT = Path(__file__).resolve().parents[2]
ADMIN = "eft_e2e-admin-token-" + "z" * 24
FAST_AGENT = {
    **AGENT_DEFAULTS,
    "heartbeat_interval_s": 0.5,
    "metrics_interval_s": 0.5,
    "reconnect_min_s": 0.1,
    "reconnect_max_s": 0.5,
}


def wait_for(probe: Callable[[], Any], timeout: float, what: str, logs: list[Path]) -> Any:
    """Poll ``probe`` until it returns something truthy; on timeout fail with the logs' tails."""
    try:
        return poll(probe, timeout)
    except TimeoutError:
        tails = "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in logs if p.exists())
        raise AssertionError(f"timed out waiting for {what}\n{tails}") from None


def judged_quality(db_file: Path) -> None:
    """Write one judged run for m-small and one for the better m-big (``db_world.PCT``).

    For tests about rollouts rather than quality: their tiny models cannot judge, so
    quality comes from runs written as the planner tests write them.
    """
    engine = create_db_engine(f"sqlite:///{db_file}")
    try:
        with session_scope(engine) as session:
            add_run(session, "m-small", "judge", "judge-server", 1)
            add_run(session, "m-big", "judge", "judge-server", 2)
    finally:
        engine.dispose()


class Fleet(LocalFleet):
    """The product's local fleet with this tree on PYTHONPATH, fast agent timers and asserts."""

    def __init__(self, tmp_path: Path, classes: Path, **controller_env: str) -> None:
        super().__init__(
            tmp_path,
            classes,
            admin_token=ADMIN,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            controller_env=controller_env,
            agent_defaults=FAST_AGENT,
        )
        self.tmp_path = tmp_path

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
            password = self.enroll_device(device_id, device_class, self.api)
            self.start_agent(device_id, device_class, password, **overrides)
        self.wait(lambda: self.online(set(devices)), 60, f"{sorted(devices)} online")

    def assign(self, device_id: str, model_id: str, *, refine: bool = False) -> None:
        """Assign a model by hand (not through a plan) and wait for the agent's ok."""
        command = {"type": "assign", "model_id": model_id, "refine": refine}
        command_id = self.send(device_id, command)
        self.wait(lambda: "ok" in self.ack_statuses(command_id), 60, f"{device_id} on {model_id}")

    def serving(self, model_id: str) -> set[str]:
        """The devices online and serving ``model_id``, as the API lists them."""
        items = self.api.get("/devices").json()["items"]
        return {d["id"] for d in items if d["status"] == "online" and d["model_id"] == model_id}

    def metric(self, name: str, **labels: str) -> float:
        """The sum of a series in the controller's /metrics over the label sets matching."""
        text = self.api.get(self.url + "/metrics").text
        total = 0.0
        for match in re.finditer(rf"^{name}\{{([^}}]*)\}} (\S+)$", text, re.MULTILINE):
            found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
            if all(found.get(k) == v for k, v in labels.items()):
                total += float(match.group(2))
        return total

    def chat_model(self, device_id: str) -> str:
        """The model the device's chat API answers with."""
        body = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
        return str(self.chat(device_id, body, timeout=60)["model"])
