"""The model store: streamed, hashed, validated, content-addressed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from controller.registry.store import ModelStore, RegistryError


def test_import_path_stores_by_sha256_with_metadata(tmp_path: Path, tiny_gguf: Path) -> None:
    store = ModelStore(tmp_path / "store")
    stored = store.import_path(tiny_gguf)
    expected = hashlib.sha256(tiny_gguf.read_bytes()).hexdigest()
    assert stored.sha256 == expected
    assert stored.path == tmp_path / "store" / f"{expected}.gguf"
    assert stored.path.read_bytes() == tiny_gguf.read_bytes()
    assert stored.size_bytes == tiny_gguf.stat().st_size
    assert stored.info.architecture == "llama"
    assert stored.info.path == stored.path
    assert list(store.incoming_dir.iterdir()) == []


def test_import_same_content_twice_keeps_one_file(tmp_path: Path, tiny_gguf: Path) -> None:
    store = ModelStore(tmp_path)
    first = store.import_path(tiny_gguf)
    second = store.import_path(tiny_gguf)
    assert first.path == second.path
    assert sorted(p.name for p in tmp_path.glob("*.gguf")) == [first.path.name]


def test_non_gguf_is_refused_at_first_bytes_and_leaves_nothing(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "s")
    incoming = store.begin()
    with pytest.raises(RegistryError) as err:
        incoming.feed(b"PK\x03\x04 this is a zip")
    incoming.abort()
    assert err.value.reason == "not_gguf"
    assert list(store.incoming_dir.iterdir()) == []
    assert list((tmp_path / "s").glob("*.gguf")) == []


def test_magic_split_across_chunks_is_accepted(tmp_path: Path, tiny_gguf: Path) -> None:
    store = ModelStore(tmp_path)
    data = tiny_gguf.read_bytes()
    incoming = store.begin()
    for i in range(0, len(data), 3):
        incoming.feed(data[i : i + 3])
    assert incoming.finish().sha256 == hashlib.sha256(data).hexdigest()


def test_truncated_gguf_is_refused_with_reason(tmp_path: Path, tiny_gguf: Path) -> None:
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(tiny_gguf.read_bytes()[: tiny_gguf.stat().st_size - 100])
    store = ModelStore(tmp_path / "s")
    with pytest.raises(RegistryError) as err:
        store.import_path(cut)
    assert err.value.reason == "truncated"
    assert str(store.incoming_dir) not in err.value.detail
    assert list(store.incoming_dir.iterdir()) == []


def test_size_limit_is_enforced_while_streaming(tmp_path: Path, tiny_gguf: Path) -> None:
    store = ModelStore(tmp_path, max_bytes=1000)
    with pytest.raises(RegistryError) as err:
        store.import_path(tiny_gguf)
    assert err.value.reason == "too_large"
    assert list(store.incoming_dir.iterdir()) == []


def test_path_for_refuses_anything_but_a_digest(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    with pytest.raises(ValueError):
        store.path_for("../../etc/passwd")
