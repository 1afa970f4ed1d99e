"""Bulk enrollment (``POST /devices/bulk``): admin only, bounded, all or nothing, one broker sync.

A refused call (role, bound, bad or repeated id, taken id) writes no device, no
login and no broker file; an accepted one returns every login once, in the
order asked, and rewrites the broker files once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import controller.enrollment
from controller.api.routes.enrollment import MAX_BULK_ENROLL
from controller.broker.passwords import verify_password
from tests.controller.api.conftest import Api

BULK = "/api/v1/devices/bulk"


def _body(*ids: str, device_class: str = "pi4-4gb") -> dict[str, Any]:
    return {"devices": [{"id": device_id, "device_class": device_class} for device_id in ids]}


@pytest.fixture
def syncs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Path]]:
    """The directories the real broker-file writer was called for (it still writes them)."""
    calls: list[Path] = []
    real = controller.enrollment.write_mosquitto_files

    def counted(directory: Path, **kwargs: Any) -> Any:
        calls.append(directory)
        return real(directory, **kwargs)

    monkeypatch.setattr(controller.enrollment, "write_mosquitto_files", counted)
    yield calls


def _logins(api: Api) -> dict[str, str]:
    lines = (api.settings.broker_dir / "passwd").read_text().splitlines()
    return dict(line.split(":", 1) for line in lines)


def _enrolled_ids(api: Api) -> list[str]:
    with api.client("viewer") as client:
        page = client.get("/api/v1/devices", params={"limit": 500}).json()
    return sorted(d["id"] for d in page["items"] if d["enrolled"])


def test_a_batch_is_enrolled_with_its_logins_returned_once_and_one_broker_sync(
    secured_api: Api, syncs: list[Path]
) -> None:
    ids = ["site-c", "site-a", "site-b"]
    with secured_api.client("admin") as client:
        response = client.post(BULK, json=_body(*ids))
    assert response.status_code == 201, response.text
    enrolled = response.json()["enrolled"]
    assert [e["device"]["id"] for e in enrolled] == ids  # the order asked
    assert all(e["device"]["device_class"] == "pi4-4gb" for e in enrolled)
    assert len(syncs) == 1
    logins = _logins(secured_api)
    for entry in enrolled:
        login = entry["credentials"]
        assert login["username"] == entry["device"]["id"]
        assert verify_password(login["password"], logins[login["username"]])
        assert login["password"] not in logins[login["username"]]  # only its hash is kept
    assert len({e["credentials"]["password"] for e in enrolled}) == 3
    assert _enrolled_ids(secured_api) == sorted(ids)


@pytest.mark.parametrize("role", ["operator", "viewer", "client", None])
def test_only_an_admin_enrolls_in_bulk(secured_api: Api, syncs: list[Path], role: str) -> None:
    with secured_api.client(role) as client:
        response = client.post(BULK, json=_body("pi-x"))
    assert response.status_code == (401 if role is None else 403), response.text
    assert syncs == [] and _enrolled_ids(secured_api) == []


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"devices": []}, "at least 1"),
        (_body(*(f"pi-{i}" for i in range(MAX_BULK_ENROLL + 1))), f"at most {MAX_BULK_ENROLL}"),
        (_body("pi-a", "pi-b", "pi-a"), "more than once: pi-a"),
        (_body("pi-a", "../../etc"), "pattern"),
        (_body("pi-a", "x\nzz"), "pattern"),
        ({"devices": [{"id": "pi-a", "location": "x" * 257}]}, "at most 256"),
    ],
    ids=["empty", "over-the-bound", "repeated-id", "path-id", "newline-id", "long-location"],
)
def test_a_bad_batch_is_refused_whole_before_anything_is_written(
    secured_api: Api, syncs: list[Path], body: dict[str, Any], says: str
) -> None:
    with secured_api.client("admin") as client:
        response = client.post(BULK, json=body)
    assert response.status_code == 422, response.text
    assert says in response.text
    assert syncs == [] and _enrolled_ids(secured_api) == []


def test_a_taken_id_refuses_the_batch_and_spends_nothing(
    secured_api: Api, syncs: list[Path]
) -> None:
    with secured_api.client("admin") as client:
        first = client.post(BULK, json=_body("pi-1", "pi-2"))
        assert first.status_code == 201, first.text
        passwd = secured_api.settings.broker_dir / "passwd"
        before = passwd.read_bytes()
        again = client.post(BULK, json=_body("pi-3", "pi-2", "pi-1"))
        reserved = client.post(BULK, json=_body("pi-4", secured_api.settings.mqtt_client_id))
    assert again.status_code == 409 and again.json()["error"] == "device_id_taken"
    assert "'pi-1'" in again.text and "'pi-2'" in again.text
    assert reserved.status_code == 409 and "reserved" in reserved.text
    assert len(syncs) == 1  # the first batch's only
    assert passwd.read_bytes() == before
    assert _enrolled_ids(secured_api) == ["pi-1", "pi-2"]
    first_logins = {
        e["device"]["id"]: e["credentials"]["password"] for e in first.json()["enrolled"]
    }
    for device_id, password in first_logins.items():  # their logins were not replaced
        assert verify_password(password, _logins(secured_api)[device_id])


def test_a_full_batch_of_the_largest_devices_fits_the_request_body_limit(secured_api: Api) -> None:
    """The bound is reachable: MAX_BULK_ENROLL devices with every field at its longest."""
    device = {"id": "a" * 63, "name": "n" * 128, "device_class": "c" * 64, "location": "l" * 256}
    body = json.dumps({"devices": [device] * MAX_BULK_ENROLL})
    assert len(body.encode()) <= secured_api.settings.http_max_body_bytes
