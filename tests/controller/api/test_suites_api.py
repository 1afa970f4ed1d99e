"""Suites over HTTP: upload with one error per bad line, roles, list/show/delete, device fetch."""

from __future__ import annotations

import hashlib
import json

import httpx

from shared.suites.builtin import builtin_bytes
from tests.controller.api.conftest import Api

CHOICE = builtin_bytes("everyday-choice")


def _upload(client: httpx.Client, suite_id: str, data: bytes) -> httpx.Response:
    return client.post(
        "/api/v1/suites",
        params={"suite_id": suite_id},
        content=data,
        headers={"Content-Type": "application/jsonl"},
    )


def test_operator_uploads_lists_shows_and_deletes_a_suite(api: Api) -> None:
    with api.client("operator") as client:
        created = _upload(client, "clinic-choice", CHOICE)
        assert created.status_code == 201, created.text
        suite = created.json()
        assert suite["sha256"] == hashlib.sha256(CHOICE).hexdigest()
        assert (suite["n_items"], suite["counts"]) == (108, {"choice": 108})
        assert suite["created_by"] == "operator-1" and "content" not in suite
        listed = client.get("/api/v1/suites").json()
        assert [s["id"] for s in listed["items"]] == ["clinic-choice"]
        shown = client.get("/api/v1/suites/clinic-choice").json()
        assert shown["items"][0] == {"id": "writing-01", "type": "choice", "category": "writing"}
        assert "Question:" not in json.dumps(shown)  # the questions themselves are not listed
        assert _upload(client, "clinic-choice", CHOICE).status_code == 409
        assert client.delete("/api/v1/suites/clinic-choice").status_code == 204
        assert client.get("/api/v1/suites/clinic-choice").status_code == 404


def test_a_bad_suite_is_refused_whole_with_one_error_per_bad_line(api: Api) -> None:
    lines = [
        {"id": "a", "type": "exact", "question": "2+2?", "answer": "4"},
        {"id": "b", "type": "choice", "context": "Q", "choices": [" x"], "answer": 0},
        {"id": "c", "type": "exact", "question": "no answer"},
    ]
    data = "\n".join(json.dumps(line) for line in lines).encode() + b"\n{oops\n"
    with api.client("operator") as client:
        refused = _upload(client, "bad", data)
        assert refused.status_code == 400
        body = refused.json()
        assert body["error"] == "bad_suite"
        assert body["detail"].splitlines() == [
            "line 2: choices: List should have at least 2 items after validation, not 1",
            "line 3: answer: Field required",
            "line 4: not JSON (Expecting property name enclosed in double quotes at column 2)",
        ]
        assert client.get("/api/v1/suites").json()["total"] == 0


def test_viewers_read_but_cannot_upload_or_delete(api: Api) -> None:
    with api.client("operator") as client:
        assert _upload(client, "s", CHOICE).status_code == 201
    with api.client("viewer") as viewer:
        assert viewer.get("/api/v1/suites/s").status_code == 200
        assert _upload(viewer, "t", CHOICE).status_code == 403
        assert viewer.delete("/api/v1/suites/s").status_code == 403
    with api.client(None) as anonymous:
        assert anonymous.get("/api/v1/suites").status_code == 401


def test_a_device_fetches_the_exact_bytes_with_its_login(api: Api) -> None:
    with api.client("operator") as client:
        assert _upload(client, "s", CHOICE).status_code == 201
        enrolled = client.post("/api/v1/devices", json={"id": "pi-s", "device_class": "pi4-4gb"})
        creds = enrolled.json()["credentials"]
    url = f"{api.url}/api/v1/suites/s/file"
    fetched = httpx.get(url, auth=(creds["username"], creds["password"]))
    assert fetched.status_code == 200 and fetched.content == CHOICE
    assert fetched.headers["etag"] == f'"{hashlib.sha256(CHOICE).hexdigest()}"'
    assert httpx.get(url, auth=(creds["username"], "wrong")).status_code == 401
    assert httpx.get(url).status_code == 401
