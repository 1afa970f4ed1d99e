"""An enrolled agent downloads a registry model with its MQTT login, no API token needed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agent.config import AgentSettings
from agent.models.store import ModelStore, StoreError
from tests.controller.api.conftest import Api, start_api


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    running = start_api(tmp_path / "ctl", public_url="http://placeholder.invalid")
    yield running
    running.server.stop()
    running.engine.dispose()


def _import(api: Api, path: Path) -> dict:
    with api.client("operator") as client:
        response = client.post(
            "/api/v1/models/upload",
            params={"model_id": "tiny"},
            content=path.read_bytes(),
            headers={"Content-Type": "application/octet-stream"},
        )
        assert response.status_code == 201, response.text
        enrolled = client.post("/api/v1/devices", json={"id": "pi-dl2"})
        assert enrolled.status_code == 201, enrolled.text
    return {"model": response.json(), "creds": enrolled.json()["credentials"]}


def test_agent_download_headers_authenticate_at_the_registry_route(
    api: Api, tiny_gguf: Path, tmp_path: Path
) -> None:
    made = _import(api, tiny_gguf)
    creds, model = made["creds"], made["model"]
    # The URL the planner puts into assign commands, pointed at this server
    url = api.settings.model_file_url("tiny").replace("http://placeholder.invalid", api.url)
    assert url == f"{api.url}/api/v1/models/tiny/file"
    settings = AgentSettings(
        device_id="pi-dl2", mqtt_username=creds["username"], mqtt_password=creds["password"]
    )
    store = ModelStore(tmp_path / "agent", 10**9, headers=settings.download_headers())
    try:
        result = store.ensure("tiny", model["sha256"], url, model["size_bytes"], protected=set())
        assert result.model.path.read_bytes() == tiny_gguf.read_bytes()
    finally:
        store.close()
    wrong = AgentSettings(device_id="pi-dl2", mqtt_username="pi-dl2", mqtt_password="wrong-pass-1")
    refused = ModelStore(tmp_path / "wrong", 10**9, headers=wrong.download_headers(), retries=1)
    try:
        with pytest.raises(StoreError, match="HTTP 401"):
            refused.ensure("tiny", model["sha256"], url, model["size_bytes"], protected=set())
    finally:
        refused.close()
    assert httpx.get(url).status_code == 401


def test_api_token_wins_over_the_device_login() -> None:
    settings = AgentSettings(
        device_id="pi-x", mqtt_username="pi-x", mqtt_password="pw-123456", controller_token="t-9"
    )
    assert settings.download_headers() == {"Authorization": "Bearer t-9"}
    basic = AgentSettings(device_id="pi-x", mqtt_username="pi-x", mqtt_password="pw-123456")
    assert basic.download_headers() == {"Authorization": "Basic cGkteDpwdy0xMjM0NTY="}
    assert AgentSettings(device_id="pi-x").download_headers() is None
