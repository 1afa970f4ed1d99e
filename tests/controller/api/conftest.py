"""API fixtures: the real app on a real uvicorn server over a real SQLite file."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine

from controller.api.state import CommandSender, StatsSource
from controller.app import create_app
from controller.core.config import ControllerSettings
from controller.core.db import create_db_engine
from controller.ingest.commands import CommandPublisher
from controller.ingest.service import IngestService
from shared.topics import Topics
from tests.controller.api.server import UvicornServer
from tests.support.broker import MosquittoBroker

ADMIN_TOKEN = "eft_admin-token-for-tests-" + "x" * 20


@dataclass
class Api:
    """A running API: its URL, the engine behind it and a token per role."""

    server: UvicornServer
    engine: Engine
    settings: ControllerSettings
    tokens: dict[str, str] = field(default_factory=dict)
    printed: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return self.server.url

    def client(self, role: str | None = "admin", **kwargs: Any) -> httpx.Client:
        """An HTTP client authenticated as ``role`` (None: no token)."""
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        headers.update(kwargs.pop("headers", {}))
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kwargs)


def start_api(
    data_dir: Path,
    *,
    engine: Engine | None = None,
    sender: CommandSender | None = None,
    stats: StatsSource | None = None,
    **overrides: Any,
) -> Api:
    """Build the app with an env-style bootstrap admin token, serve it, make role tokens."""
    settings = ControllerSettings(
        data_dir=data_dir, bootstrap_admin_token=SecretStr(ADMIN_TOKEN), **overrides
    )
    engine = engine or create_db_engine(settings.db_url)
    printed: list[str] = []
    app = create_app(
        settings,
        engine=engine,
        command_sender=sender,
        ingest_stats=stats,
        token_sink=printed.append,
    )
    api = Api(UvicornServer(app).start(), engine, settings, {"admin": ADMIN_TOKEN}, printed)
    with api.client("admin") as client:
        for role in ("operator", "viewer", "client"):
            response = client.post("/api/v1/tokens", json={"name": f"{role}-1", "role": role})
            assert response.status_code == 201, response.text
            api.tokens[role] = response.json()["token"]
    return api


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    """The API over a fresh SQLite file, without an MQTT connection."""
    running = start_api(tmp_path / "data")
    yield running
    running.server.stop()
    running.engine.dispose()


@pytest.fixture
def api_with_broker(
    tmp_path: Path,
    sqlite_engine: Engine,
    mosquitto: MosquittoBroker,
    ingest_factory: Callable[..., IngestService],
) -> Iterator[tuple[Api, IngestService]]:
    """The API with real ingest and a real command publisher on the session Mosquitto."""
    service = ingest_factory(sqlite_engine, mosquitto, client_id=f"api-{uuid.uuid4().hex[:8]}")
    sender = CommandPublisher(sqlite_engine, service.connection, topics=Topics())
    running = start_api(tmp_path / "data", engine=sqlite_engine, sender=sender, stats=service.stats)
    yield running, service
    running.server.stop()
