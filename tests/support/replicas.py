"""Several ``controller run`` replicas on one PostgreSQL and one Mosquitto, with real agents.

Replica ``i`` has its own API port and MQTT client id (``replica-i``); all share
the database, the broker (ingest split by an MQTT 5 shared subscription), the
data dir (model registry files) and the bootstrap admin token.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import httpx
from sqlalchemy import Engine
from sqlmodel import Session, select

from controller.demo.local_fleet import FleetError
from controller.demo.ports import free_port
from controller.demo.processes import Child, python_command
from controller.models import Lease
from tests.support.broker import MosquittoBroker
from tests.support.fleet import ADMIN, Fleet

SHARE_GROUP = "controllers"


class ReplicaFleet(Fleet):
    """A :class:`Fleet` whose controller is ``replicas`` processes; agents use the broker."""

    def __init__(
        self,
        tmp_path: Path,
        classes: Path,
        *,
        database_url: str,
        broker: MosquittoBroker,
        replicas: int = 2,
        **controller_env: str,
    ) -> None:
        self.ports = [0] + [free_port() for _ in range(replicas - 1)]  # 0: the base's port
        self.replicas: list[Child] = []
        self._replica_env = {
            "database_url": database_url,
            "broker_url": broker.url,
            "mqtt_password": "replica-test-password",
            "mqtt_share_group": SHARE_GROUP,
            **controller_env,
        }
        super().__init__(tmp_path, classes)
        self.replicas.append(self.controller)
        self.broker_port = broker.port  # agents connect to the shared Mosquitto
        for index in range(1, replicas):
            self.replicas.append(self.start_replica(index))

    def _start_controller(self, admin_token: str, extra: Mapping[str, str]) -> Child:
        """Replica 0 is the base class's controller, on the base class's API port."""
        self.ports[0] = self.api_port
        return self.start_replica(0)

    def _own(self, index: int) -> dict[str, str]:
        return {
            "api_port": str(self.ports[index]),
            "mqtt_client_id": f"replica-{index}",
            "public_url": self.replica_url(index),
        }

    def replica_url(self, index: int) -> str:
        """The HTTP address of replica ``index``."""
        return f"http://127.0.0.1:{self.ports[index]}"

    def start_replica(self, index: int) -> Child:
        """Start (or restart) replica ``index`` with its fixed port and MQTT client id."""
        settings = {
            "data_dir": str(self.workdir / "controller"),
            "bootstrap_admin_token": ADMIN,
            "device_classes_dir": str(self.classes_dir),
            "planner_interval_s": "0.3",
            **self._replica_env,
            **self._own(index),
        }
        env = {**self.env, **{f"EDGEFLEET_CONTROLLER_{k.upper()}": v for k, v in settings.items()}}
        argv = python_command("controller", "run")
        child = self._start(f"controller-{index}", argv, self.workdir, env)
        if index < len(self.replicas):
            self.replicas[index] = child
        return child

    def replica_api(self, index: int) -> httpx.Client:
        """An admin API client of replica ``index``."""
        client = httpx.Client(
            base_url=self.replica_url(index) + "/api/v1",
            headers={"Authorization": f"Bearer {ADMIN}"},
            timeout=60,
        )
        self._clients.append(client)
        return client

    def replica_healthy(self, index: int) -> bool:
        """Whether replica ``index`` answers ``/healthz``."""
        return httpx.get(self.replica_url(index) + "/healthz", timeout=2).status_code == 200

    @staticmethod
    def lease(engine: Engine) -> Lease | None:
        """The planner lease row as it is now."""
        with Session(engine) as session:
            return session.exec(select(Lease).where(Lease.name == "planner")).first()

    def leader(self, engine: Engine) -> int | None:
        """Which replica the planner lease names (None: not claimed yet)."""
        row = self.lease(engine)
        if row is None:
            return None
        for index in range(len(self.replicas)):
            if f":replica-{index}:" in row.holder:
                return index
        raise FleetError(f"unknown lease holder {row.holder!r}")

    def _check_controller(self, what: str) -> None:
        """Replicas may be killed on purpose; the fleet fails only when none is left."""
        if not any(child.running for child in self.replicas):
            raise FleetError(f"every controller replica exited before {what}\n{self.log_tails()}")
