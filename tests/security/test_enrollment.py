"""Enrollment at the door: one device-id pattern, no rebinding, broker files never forged.

Findings 3 and 4: ``../../etc`` and SQL-looking ids were accepted (201); id
``"x\\nzz"`` wrote a forged ``zz:`` line into the password file and broke every
later enrollment; an unbound enrollment token took over the enrolled ``pi-b``.
"""

from __future__ import annotations

import pytest

from controller.broker.passwords import verify_password
from tests.controller.api.conftest import Api

BAD_IDS = ["../../etc", "a'; DROP TABLE device;--", "x\nzz", "Pi-Upper", "", "a" * 64, "-x"]


@pytest.mark.parametrize("device_id", BAD_IDS)
def test_invalid_device_ids_are_refused_and_nothing_is_written(
    secured_api: Api, device_id: str
) -> None:
    passwords = secured_api.settings.broker_dir / "passwd"
    with secured_api.client("operator") as client:
        assert client.post("/api/v1/devices", json={"id": "pi-ok"}).status_code == 201
        before = passwords.read_bytes()
        response = client.post("/api/v1/devices", json={"id": device_id})
        assert response.status_code == 422, response.text
        assert client.get("/api/v1/devices").json()["total"] == 1
        # later enrollments still work and still rewrite the files
        assert client.post("/api/v1/devices", json={"id": "pi-next"}).status_code == 201
    lines = passwords.read_text().splitlines()
    assert passwords.read_bytes() != before
    assert sorted(line.split(":")[0] for line in lines) == ["pi-next", "pi-ok"]


def test_the_device_id_pattern_is_in_the_openapi_schema(secured_api: Api) -> None:
    with secured_api.client(None) as client:
        schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert schema["DeviceCreate"]["properties"]["id"]["pattern"] == "^[a-z0-9][a-z0-9_-]{0,62}$"
    assert schema["RedeemRequest"]["properties"]["device_id"]["pattern"]


def test_an_enrolled_id_is_never_rebound(secured_api: Api) -> None:
    with secured_api.client("operator") as client:
        created = client.post("/api/v1/devices", json={"id": "pi-b"})
        own_password = created.json()["credentials"]["password"]
        again = client.post("/api/v1/devices", json={"id": "pi-b"})
        assert again.status_code == 409 and again.json()["error"] == "device_id_taken"
        token = client.post("/api/v1/enrollment-tokens", json={}).json()["token"]
    with secured_api.client(None, headers={"Authorization": f"Bearer {token}"}) as device:
        redeemed = device.post("/api/v1/enroll", json={"device_id": "pi-b"})
        assert redeemed.status_code == 409, redeemed.text
        # the refused redemption did not spend the token
        assert device.post("/api/v1/enroll", json={"device_id": "pi-new"}).status_code == 201
    line = next(
        line
        for line in (secured_api.settings.broker_dir / "passwd").read_text().splitlines()
        if line.startswith("pi-b:")
    )
    assert verify_password(own_password, line.split(":", 1)[1]), "pi-b's own login was replaced"


@pytest.mark.parametrize(
    "device_id", ["edgefleet-controller", "edgefleet-controller-x", "controller"]
)
def test_ids_of_the_controllers_own_clients_are_reserved(secured_api: Api, device_id: str) -> None:
    with secured_api.client("operator") as client:
        response = client.post("/api/v1/devices", json={"id": device_id})
    assert response.status_code == 409, response.text
