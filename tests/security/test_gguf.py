"""Crafted GGUF uploads (finding 6): every length and value checked, a clear 4xx, no file
left behind, nothing of the file's content echoed."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from gguf import GGUFValueType

from tests.controller.api.conftest import Api, start_api


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def _field(key: str, value_type: int, value: bytes) -> bytes:
    return _string(key) + struct.pack("<I", value_type) + value


def _gguf(*fields: bytes) -> bytes:
    arch = _field("general.architecture", GGUFValueType.STRING, _string("llama"))
    everything = (arch, *fields)
    header = b"GGUF" + struct.pack("<IQQ", 3, 0, len(everything))
    return header + b"".join(everything) + b"\0" * 64


def _array(item_type: int, length: int) -> bytes:
    return struct.pack("<IQ", item_type, length)


CRAFTED = {
    "array of 2^63 uint8": _gguf(
        _field("x.a", GGUFValueType.ARRAY, _array(GGUFValueType.UINT8, 2**63))
    ),
    "array of 2^61 uint64": _gguf(
        _field("x.b", GGUFValueType.ARRAY, _array(GGUFValueType.UINT64, 2**61))
    ),
    "array of 2^40 strings": _gguf(
        _field("x.c", GGUFValueType.ARRAY, _array(GGUFValueType.STRING, 2**40))
    ),
    "context_length -5": _gguf(
        _field("llama.context_length", GGUFValueType.INT32, struct.pack("<i", -5))
    ),
    "context_length 2^64-1": _gguf(
        _field("llama.context_length", GGUFValueType.UINT64, struct.pack("<Q", 2**64 - 1))
    ),
    "block_count NaN": _gguf(
        _field("llama.block_count", GGUFValueType.FLOAT32, struct.pack("<f", float("nan")))
    ),
    "2^60 fields": b"GGUF" + struct.pack("<IQQ", 3, 0, 2**60) + b"\0" * 64,
    "2^40 tensors": b"GGUF" + struct.pack("<IQQ", 3, 2**40, 0) + b"\0" * 64,
}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    running = start_api(tmp_path / "data")
    yield running
    running.server.stop()
    running.engine.dispose()


def _files(api: Api) -> list[Path]:
    root = api.settings.models_dir
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.mark.parametrize("name", list(CRAFTED))
def test_a_crafted_header_is_refused_with_a_4xx_and_leaves_no_file(api: Api, name: str) -> None:
    with api.client("admin") as client:
        response = client.post(
            "/api/v1/models/upload",
            params={"model_id": "crafted"},
            content=CRAFTED[name],
            headers={"content-type": "application/octet-stream"},
        )
        assert 400 <= response.status_code < 500, (name, response.status_code, response.text)
        assert client.get("/api/v1/models").json()["total"] == 0
    assert _files(api) == []


def test_importing_a_non_gguf_file_does_not_echo_its_content(api: Api, tmp_path: Path) -> None:
    secret = tmp_path / "not-a-model"
    secret.write_bytes(b"root:x:0:0:secret-line\n")
    with api.client("admin") as client:
        body = {"id": "passwd", "name": "passwd", "path": str(secret)}
        response = client.post("/api/v1/models", json=body)
    assert response.status_code == 400 and response.json()["error"] == "not_gguf"
    assert "root" not in response.text and "secret" not in response.text
    assert _files(api) == []
