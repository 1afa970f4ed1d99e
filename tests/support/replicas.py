"""Several ``controller run`` replicas on one PostgreSQL and one Mosquitto (tests and bench).

Replica ``i`` has its own API port and MQTT client id (``replica-i``); all share
the database, the broker (ingest split by an MQTT 5 shared subscription), the
data dir (model registry files, generated Mosquitto files) and the bootstrap
admin token. :class:`ReplicaFleet` adds real agents (the e2e tests'
:class:`Fleet`); ``bench/fleet_sim.py`` uses :class:`ControllerReplicas` alone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import httpx
from sqlalchemy import Engine
from sqlmodel import Session, select

from controller.demo.local_fleet import FleetError
from controller.demo.ports import free_port
from controller.demo.processes import Child, ProcessGroup, python_command
from controller.models import Lease
from tests.support.broker import MosquittoBroker
from tests.support.fleet import ADMIN, ROOT, Fleet

SHARE_GROUP = "controllers"
MQTT_PASSWORD = "replica-test-password"


class ControllerReplicas:
    """``count`` controller processes started into ``group``, each restartable by index."""

    def __init__(
        self,
        workdir: Path,
        group: ProcessGroup,
        *,
        database_url: str,
        broker_url: str,
        classes_dir: Path,
        count: int = 2,
        env: Mapping[str, str] | None = None,
        **settings: str,
    ) -> None:
        self.workdir, self.group = workdir, group
        self.ports = [free_port() for _ in range(count)]
        self.children: list[Child | None] = [None] * count
        self.env = dict(env if env is not None else {**os.environ, "PYTHONPATH": str(ROOT)})
        self.settings = {
            "data_dir": str(workdir / "controller"),
            "bootstrap_admin_token": ADMIN,
            "device_classes_dir": str(classes_dir),
            "database_url": database_url,
            "broker_url": broker_url,
            "mqtt_password": MQTT_PASSWORD,
            "mqtt_share_group": SHARE_GROUP,
            **settings,
        }

    @property
    def broker_dir(self) -> Path:
        """Where the replicas write Mosquitto's password and ACL files."""
        return self.workdir / "controller" / "broker"

    def url(self, index: int) -> str:
        """The HTTP address of replica ``index``."""
        return f"http://127.0.0.1:{self.ports[index]}"

    def start(self, index: int) -> Child:
        """Start (or restart) replica ``index`` with its fixed port and MQTT client id."""
        own = {
            "api_port": str(self.ports[index]),
            "mqtt_client_id": f"replica-{index}",
            "public_url": self.url(index),
        }
        values = {**self.settings, **own}
        env = {**self.env, **{f"EDGEFLEET_CONTROLLER_{k.upper()}": v for k, v in values.items()}}
        log = self.workdir / f"controller-{index}.log"
        argv = python_command("controller", "run")
        child = self.group.start(f"controller-{index}", argv, log=log, env=env, cwd=self.workdir)
        self.children[index] = child
        return child

    def running(self, index: int) -> bool:
        """Whether replica ``index``'s process is alive."""
        child = self.children[index]
        return child is not None and child.running

    def healthy(self, index: int) -> bool:
        """Whether replica ``index`` answers ``/healthz``."""
        try:
            return httpx.get(self.url(index) + "/healthz", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def api(self, index: int) -> httpx.Client:
        """An admin API client of replica ``index`` (the caller closes it)."""
        return httpx.Client(
            base_url=self.url(index) + "/api/v1",
            headers={"Authorization": f"Bearer {ADMIN}"},
            timeout=120,
        )

    def leader(self, engine: Engine) -> int | None:
        """Which replica the planner lease names (None: not claimed yet)."""
        row = lease(engine)
        if row is None:
            return None
        for index in range(len(self.ports)):
            if f":replica-{index}:" in row.holder:
                return index
        raise FleetError(f"unknown lease holder {row.holder!r}")


def lease(engine: Engine) -> Lease | None:
    """The planner lease row as it is now."""
    with Session(engine) as session:
        return session.exec(select(Lease).where(Lease.name == "planner")).first()


class ReplicaFleet(Fleet):
    """A :class:`Fleet` whose controller is two or more replicas; agents use the broker."""

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
        def replica_set() -> ControllerReplicas:
            return ControllerReplicas(
                self.workdir, self.group, env=self.env, database_url=database_url,
                broker_url=broker.url, classes_dir=classes, count=replicas,
                **{"planner_interval_s": "0.3", **controller_env},
            )  # fmt: skip

        self._replica_set = replica_set
        super().__init__(tmp_path, classes)
        self.broker_port = broker.port  # agents connect to the shared Mosquitto
        for index in range(1, replicas):
            self.set.start(index)

    def _start_controller(self, admin_token: str, extra: Mapping[str, str]) -> Child:
        """Replica 0 is the base class's controller, on the base class's API port."""
        self.set = self._replica_set()
        self.set.ports[0] = self.api_port
        self.logs.extend(self.workdir / f"controller-{i}.log" for i in range(len(self.set.ports)))
        return self.set.start(0)

    def replica_api(self, index: int) -> httpx.Client:
        """An admin API client of replica ``index``, closed with the fleet."""
        client = self.set.api(index)
        self._clients.append(client)
        return client

    def _check_controller(self, what: str) -> None:
        """Replicas may be killed on purpose; the fleet fails only when none is left."""
        if not any(self.set.running(i) for i in range(len(self.set.ports))):
            raise FleetError(f"every controller replica exited before {what}\n{self.log_tails()}")
