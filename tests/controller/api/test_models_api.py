"""Model registry over HTTP: streamed upload, refusals, resumable download, guarded delete."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session

from controller.models import Device, Model
from tests.controller.api.conftest import Api


def _chunks(path: Path, size: int = 8192) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(size):
            yield chunk


def _upload(client: httpx.Client, path: Path, model_id: str) -> httpx.Response:
    return client.post(
        "/api/v1/models/upload",
        params={"model_id": model_id},
        content=_chunks(path),
        headers={"Content-Type": "application/octet-stream"},
    )


def _store_files(api: Api) -> list[Path]:
    return sorted(api.settings.models_dir.rglob("*.gguf")) + sorted(
        api.settings.models_dir.glob(".incoming/*")
    )


def test_upload_streams_registers_and_estimates_memory(api: Api, tiny_gguf: Path) -> None:
    with api.client("operator") as client:
        response = _upload(client, tiny_gguf, "tiny")
        assert response.status_code == 201, response.text
        model = response.json()
        assert model["sha256"] == hashlib.sha256(tiny_gguf.read_bytes()).hexdigest()
        assert model["size_bytes"] == tiny_gguf.stat().st_size
        assert model["architecture"] == "llama" and model["quantization"] == "Q4_0"
        assert model["memory_estimate_mb"] > 0
        detail = client.get("/api/v1/models/tiny").json()
    fits = detail["memory_by_class"]
    assert set(fits) >= {"pi4-4gb", "pizero2w-512mb"}
    assert all(entry["fits"] for entry in fits.values())  # a tiny model fits every class
    assert "path" not in detail


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"PK\x03\x04" + b"\0" * 5000, "not_gguf"),
        (b"<html>not a model</html>", "not_gguf"),
        (b"GGUF\x03\x00\x00\x00", "truncated"),
    ],
)
def test_upload_of_non_gguf_or_header_garbage_is_refused(
    api: Api, content: bytes, reason: str
) -> None:
    with api.client("operator") as client:
        response = client.post("/api/v1/models/upload", params={"model_id": "bad"}, content=content)
        assert response.status_code == 400
        assert response.json()["error"] == reason
        assert client.get("/api/v1/models/bad").status_code == 404
    assert _store_files(api) == []


def test_truncated_upload_is_refused_and_leaves_nothing(api: Api, tiny_gguf: Path) -> None:
    data = tiny_gguf.read_bytes()
    with api.client("operator") as client:
        response = client.post(
            "/api/v1/models/upload", params={"model_id": "cut"}, content=data[: len(data) // 2]
        )
    assert response.status_code == 400
    assert response.json()["error"] == "truncated"
    assert "tensor data ends at byte" in response.json()["detail"]
    assert _store_files(api) == []


def test_duplicate_id_or_content_is_a_conflict(api: Api, tiny_gguf: Path) -> None:
    with api.client("operator") as client:
        assert _upload(client, tiny_gguf, "tiny").status_code == 201
        again = _upload(client, tiny_gguf, "tiny")
        assert again.status_code == 409 and "already in the registry" in again.json()["detail"]
        same_bytes = _upload(client, tiny_gguf, "tiny-copy")
        assert same_bytes.status_code == 409 and "'tiny'" in same_bytes.json()["detail"]


def test_admin_imports_from_a_local_path(api: Api, tiny_gguf: Path, tmp_path: Path) -> None:
    with api.client("admin") as client:
        ok = client.post(
            "/api/v1/models", json={"id": "local", "name": "L", "path": str(tiny_gguf)}
        )
        assert ok.status_code == 201, ok.text
        assert ok.json()["name"] == "L"
        missing = client.post(
            "/api/v1/models", json={"id": "gone", "name": "x", "path": str(tmp_path / "no.gguf")}
        )
        assert missing.status_code == 404


def test_range_download_resumes_to_the_same_sha256(api: Api, tiny_gguf: Path) -> None:
    expected = hashlib.sha256(tiny_gguf.read_bytes()).hexdigest()
    size = tiny_gguf.stat().st_size
    with api.client("operator") as client:
        assert _upload(client, tiny_gguf, "tiny").status_code == 201
    with api.client("viewer") as client:
        head = client.head("/api/v1/models/tiny/file")
        assert head.status_code == 200
        assert int(head.headers["content-length"]) == size
        assert head.headers["etag"] == f'"{expected}"'
        assert head.headers["accept-ranges"] == "bytes"
        cut = size // 3
        with client.stream("GET", "/api/v1/models/tiny/file") as first:  # interrupted
            received = b""
            for chunk in first.iter_bytes(4096):
                received += chunk
                if len(received) >= cut:
                    break
        received = received[:cut]
        rest = client.get(
            "/api/v1/models/tiny/file",
            headers={"Range": f"bytes={cut}-", "If-Range": head.headers["etag"]},
        )
        assert rest.status_code == 206
        assert rest.headers["content-range"] == f"bytes {cut}-{size - 1}/{size}"
        assert hashlib.sha256(received + rest.content).hexdigest() == expected
        stale = client.get(
            "/api/v1/models/tiny/file", headers={"Range": f"bytes={cut}-", "If-Range": '"other"'}
        )
        assert stale.status_code == 200 and len(stale.content) == size  # changed file: whole
        unchanged = client.get(
            "/api/v1/models/tiny/file", headers={"If-None-Match": head.headers["etag"]}
        )
        assert unchanged.status_code == 304
        beyond = client.get("/api/v1/models/tiny/file", headers={"Range": f"bytes={size + 10}-"})
        assert beyond.status_code == 416


def test_device_login_downloads_and_wrong_login_is_refused(api: Api, tiny_gguf: Path) -> None:
    with api.client("operator") as client:
        assert _upload(client, tiny_gguf, "tiny").status_code == 201
        enrolled = client.post("/api/v1/devices", json={"id": "pi-dl", "device_class": "pi4-4gb"})
        assert enrolled.status_code == 201, enrolled.text
        creds = enrolled.json()["credentials"]
    url = f"{api.url}/api/v1/models/tiny/file"
    ok = httpx.get(url, auth=(creds["username"], creds["password"]))
    assert ok.status_code == 200 and ok.content == tiny_gguf.read_bytes()
    wrong = httpx.get(url, auth=(creds["username"], "not-the-password"))
    assert wrong.status_code == 401 and wrong.json()["error"] == "unauthorized"
    assert httpx.get(url).status_code == 401
    with api.client("operator") as client:
        rotated = client.post("/api/v1/devices/pi-dl/credentials").json()
    assert httpx.get(url, auth=(creds["username"], creds["password"])).status_code == 401
    assert httpx.get(url, auth=(rotated["username"], rotated["password"])).status_code == 200
    with api.client("operator") as client:
        revoked = client.delete("/api/v1/devices/pi-dl/credentials")
        assert revoked.json()["revoked"] == 1
    assert httpx.get(url, auth=(rotated["username"], rotated["password"])).status_code == 401


def test_delete_is_refused_while_a_device_serves_the_model(api: Api, tiny_gguf: Path) -> None:
    with api.client("operator") as client:
        assert _upload(client, tiny_gguf, "tiny").status_code == 201
    with Session(api.engine) as session:
        session.add(Device(id="pi-serving", model_id="tiny", status="online"))
        session.commit()
    with api.client("operator") as client:
        refused = client.delete("/api/v1/models/tiny")
        assert refused.status_code == 409
        assert "1 device(s) serve it" in refused.json()["detail"]
        with Session(api.engine) as session:
            device = session.get(Device, "pi-serving")
            assert device is not None
            device.model_id = None
            session.add(device)
            session.commit()
        assert client.delete("/api/v1/models/tiny").status_code == 204
        assert client.get("/api/v1/models/tiny").status_code == 404
    with Session(api.engine) as session:
        assert session.get(Model, "tiny") is None
    assert _store_files(api) == []


def test_model_list_filters_and_paginates(api: Api, tiny_gguf_factory) -> None:  # type: ignore[no-untyped-def]
    with api.client("operator") as client:
        for i, quant in enumerate(["Q4_0", "Q4_1", "Q4_0"]):
            path = tiny_gguf_factory(f"m{i}", quantization=quant, seed=i)
            assert _upload(client, path, f"m{i}").status_code == 201
        page = client.get("/api/v1/models", params={"limit": 2}).json()
        assert page["total"] == 3 and [m["id"] for m in page["items"]] == ["m0", "m1"]
        q40 = client.get("/api/v1/models", params={"quantization": "Q4_0"}).json()
        assert [m["id"] for m in q40["items"]] == ["m0", "m2"]
