"""Security tests: the real API (uvicorn, SQLite file) with Mosquitto files configured."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.controller.api.conftest import Api, start_api
from tests.controller.conftest import (  # noqa: F401 - the storage fixtures, on both backends
    engine,
    pg_engine,
    postgres_server,
    sqlite_engine,
)

CONTROLLER_PASSWORD = "security-test-controller-secret"


@pytest.fixture
def secured_api(tmp_path: Path) -> Iterator[Api]:
    """The API with a controller MQTT password, so every enrollment writes broker files."""
    running = start_api(tmp_path / "data", mqtt_password=CONTROLLER_PASSWORD)
    yield running
    running.server.stop()
    running.engine.dispose()
