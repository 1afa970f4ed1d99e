"""Tokens and roles: every route needs a token (but /healthz); every mutating route a role."""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session

from controller.app import create_app
from controller.core.config import ControllerSettings
from controller.core.security import create_api_token
from controller.models import Role
from tests.controller.api.conftest import ADMIN_TOKEN, Api, start_api
from tests.controller.api.server import UvicornServer

PUBLIC = {("GET", "/healthz")}
"""Operations that need no token at all."""
OWN_AUTH = {("POST", "/api/v1/enroll")}
"""Authenticated by a one-time enrollment token instead of an API token."""
ADMIN_ONLY = {("POST", "/api/v1/models"), ("POST", "/api/v1/devices/bulk")} | {
    (method, path) for method in ("GET", "POST", "DELETE") for path in ("/api/v1/tokens",
                                                                       "/api/v1/tokens/{token_id}")
}  # fmt: skip
"""Mutating (or secret-listing) operations that an operator may not call."""
GATEWAY = {("POST", "/v1/chat/completions"), ("GET", "/v1/models")}
"""The gateway's routes, which any token may call, and a client key nothing else."""
FASTAPI_DOCS = {"/openapi.json", "/docs", "/redoc", "/docs/oauth2-redirect"}
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}


def _operations() -> list[tuple[str, str]]:
    """Every (method, path) in the app's OpenAPI schema, built from its routes."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = ControllerSettings(data_dir=Path(tmp), dev_mode=True)
        schema = create_app(settings).openapi()
    return sorted(
        (method.upper(), path) for path, item in schema["paths"].items() for method in item
    )


OPERATIONS = _operations()
MUTATING_OPERATIONS = [
    op for op in OPERATIONS if op[0] in MUTATING and op not in OWN_AUTH | GATEWAY
]
OPERATOR_OPERATIONS = [
    op for op in OPERATIONS if op not in PUBLIC | OWN_AUTH | GATEWAY and op[1] not in FASTAPI_DOCS
]
"""Everything but the gateway, for the operators: a client key may call none of it."""


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


@pytest.fixture(scope="module")
def shared_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    running = start_api(tmp_path_factory.mktemp("auth") / "data")
    yield running
    running.server.stop()
    running.engine.dispose()


def _call(api: Api, role: str | None, method: str, path: str) -> httpx.Response:
    with api.client(role) as client:
        return client.request(method, _concrete(path), json={})


def test_schema_lists_the_expected_mutating_routes() -> None:
    assert len(MUTATING_OPERATIONS) >= 12
    for op in [("POST", "/api/v1/commands"), ("POST", "/api/v1/models/upload"),
               ("DELETE", "/api/v1/models/{model_id}"), ("POST", "/api/v1/devices")]:  # fmt: skip
        assert op in MUTATING_OPERATIONS


@pytest.mark.parametrize(("method", "path"), [op for op in OPERATIONS if op not in PUBLIC])
def test_every_route_refuses_a_missing_token(shared_api: Api, method: str, path: str) -> None:
    if path in FASTAPI_DOCS:
        pytest.skip("FastAPI's own schema and docs pages")
    response = _call(shared_api, None, method, path)
    assert response.status_code == 401
    if method == "HEAD":
        return
    assert response.json()["error"] == "unauthorized"
    assert response.json()["detail"]


@pytest.mark.parametrize(("method", "path"), MUTATING_OPERATIONS)
def test_every_mutating_route_refuses_a_viewer(shared_api: Api, method: str, path: str) -> None:
    response = _call(shared_api, "viewer", method, path)
    assert response.status_code == 403, response.text
    body = response.json()
    assert body["error"] == "forbidden"
    assert "viewer" in body["detail"]


@pytest.mark.parametrize(("method", "path"), OPERATOR_OPERATIONS)
def test_a_client_key_is_refused_on_every_operator_route(
    shared_api: Api, method: str, path: str
) -> None:
    response = _call(shared_api, "client", method, path)
    assert response.status_code == 403, response.text
    if method != "HEAD":
        assert "your token has client" in response.json()["detail"]


def test_a_client_key_reaches_the_gateway(shared_api: Api) -> None:
    with shared_api.client("client") as client:
        listed = client.get("/v1/models")
        chat = client.post(
            "/v1/chat/completions", json={"messages": [{"role": "user", "content": "Hi"}]}
        )
    assert listed.status_code == 200 and listed.json()["data"][0]["id"] == "auto"
    assert chat.status_code == 503  # allowed, but no device is online to answer
    assert chat.json()["error"] == "no_device"


@pytest.mark.parametrize(("method", "path"), MUTATING_OPERATIONS)
def test_operator_passes_unless_admin_only(shared_api: Api, method: str, path: str) -> None:
    response = _call(shared_api, "operator", method, path)
    if (method, path) in ADMIN_ONLY:
        assert response.status_code == 403
        assert "admin" in response.json()["detail"]
    else:
        assert response.status_code not in (401, 403), response.text


@pytest.mark.parametrize(("method", "path"), MUTATING_OPERATIONS)
def test_admin_passes_every_guard(shared_api: Api, method: str, path: str) -> None:
    assert _call(shared_api, "admin", method, path).status_code not in (401, 403)


def test_viewer_reads_but_token_listing_is_admin_only(api: Api) -> None:
    with api.client("viewer") as client:
        assert client.get("/api/v1/devices").status_code == 200
        assert client.get("/metrics").status_code == 200
        assert client.get("/api/v1/tokens").status_code == 403


def test_unknown_revoked_and_expired_tokens_are_refused(api: Api) -> None:
    with httpx.Client(base_url=api.url, headers={"Authorization": "Bearer eft_nope"}) as client:
        assert client.get("/api/v1/devices").json()["detail"] == "unknown or revoked token"
    with api.client("admin") as admin:
        listed = admin.get("/api/v1/tokens").json()["items"]
        viewer_id = next(t["id"] for t in listed if t["name"] == "viewer-1")
        revoked = admin.delete(f"/api/v1/tokens/{viewer_id}")
        assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    with api.client("viewer") as client:
        assert client.get("/api/v1/devices").status_code == 401
    with Session(api.engine) as session:
        _, expired = create_api_token(
            session, name="old", role=Role.ADMIN, expires_at=datetime.now(UTC) - timedelta(1)
        )
    with httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {expired}"}) as c:
        assert c.get("/api/v1/devices").status_code == 401


def test_last_admin_token_cannot_be_revoked(api: Api) -> None:
    with api.client("admin") as admin:
        tokens = admin.get("/api/v1/tokens").json()["items"]
        admin_id = next(t["id"] for t in tokens if t["role"] == "admin")
        response = admin.delete(f"/api/v1/tokens/{admin_id}")
    assert response.status_code == 409
    assert response.json()["error"] == "conflict"


def test_token_list_never_contains_secrets(api: Api) -> None:
    with api.client("admin") as admin:
        text = admin.get("/api/v1/tokens").text
    for secret in api.tokens.values():
        assert secret not in text


def test_generated_bootstrap_token_is_shown_once_and_never_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = ControllerSettings(data_dir=tmp_path / "data")
    shown: list[str] = []
    for _ in range(2):  # first start, then a restart on the same database
        server = UvicornServer(create_app(settings, token_sink=shown.append)).start()
        server.stop()
    assert len(shown) == 1
    token = shown[0]
    assert token.startswith("eft_") and len(token) > 40
    server = UvicornServer(create_app(settings, token_sink=shown.append)).start()
    try:
        headers = {"Authorization": f"Bearer {token}"}
        response = httpx.get(f"{server.url}/api/v1/tokens", headers=headers)
        assert response.status_code == 200
        assert response.json()["items"][0]["role"] == "admin"
    finally:
        server.stop()
    assert token not in caplog.text
    assert ADMIN_TOKEN not in caplog.text


def test_env_bootstrap_token_is_not_printed(api: Api) -> None:
    assert api.printed == []


def test_secrets_created_through_the_api_never_reach_the_logs(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with api.client("admin") as admin:
        token = admin.post("/api/v1/tokens", json={"name": "ci", "role": "operator"}).json()
        enrolled = admin.post("/api/v1/devices", json={"id": "pi-secret"}).json()
        rotated = admin.post("/api/v1/devices/pi-secret/credentials").json()
        issued = admin.post("/api/v1/enrollment-tokens", json={}).json()
    secrets = [token["token"], enrolled["credentials"]["password"], rotated["password"],
               issued["token"], *api.tokens.values()]  # fmt: skip
    assert all(len(s) >= 20 for s in secrets)
    assert caplog.records, "the calls above should have logged something"
    for secret in secrets:
        assert secret not in caplog.text
