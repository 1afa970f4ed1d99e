"""GET /api/v1/me: a client learns its token's name and role (the dashboard's sign-in)."""

from __future__ import annotations

import pytest

from tests.controller.api.conftest import Api


@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
def test_me_names_the_token_and_its_role(api: Api, role: str) -> None:
    with api.client(role) as client:
        response = client.get("/api/v1/me")
    assert response.status_code == 200
    expected = "bootstrap-admin" if role == "admin" else f"{role}-1"
    assert response.json() == {"name": expected, "role": role}
    assert api.tokens[role] not in response.text


def test_me_refuses_an_unknown_token(api: Api) -> None:
    with api.client(None, headers={"Authorization": "Bearer eft_not-a-real-token"}) as client:
        response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.json() == {"error": "unauthorized", "detail": "unknown or revoked token"}
