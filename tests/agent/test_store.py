"""The model store against a real HTTP server: resume, sha256, budget and LRU eviction."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from agent.models.store import ModelStore, StoreError
from tests.agent.daemon_support import FileServer

MB = 1_000_000


def _publish(registry: FileServer, name: str, size: int, seed: int = 0) -> tuple[str, str, int]:
    data = hashlib.sha256(str(seed).encode()).digest() * (size // 32 + 1)
    data = data[:size]
    (registry.root / name).write_bytes(data)
    return f"{registry.url}/{name}", hashlib.sha256(data).hexdigest(), size


def test_interrupted_download_resumes_from_where_it_stopped(registry, tmp_path: Path) -> None:
    url, sha, size = _publish(registry, "m.gguf", 400_000)
    registry.cut_after["m.gguf"] = 150_000
    store = ModelStore(tmp_path / "store", 10 * MB, retries=1)
    with pytest.raises(StoreError, match="incomplete"):
        store.ensure("m", sha, url, size, protected=set())
    assert (tmp_path / "store" / f"{sha}.part").stat().st_size == 150_000
    store.close()
    restarted = ModelStore(tmp_path / "store", 10 * MB, retries=1)  # as after an agent restart
    result = restarted.ensure("m", sha, url, size, protected=set())
    assert result.bytes_transferred == size - 150_000
    assert [a.start_offset for a in result.attempts] == [150_000]
    assert registry.requests == [("m.gguf", None), ("m.gguf", "bytes=150000-")]
    assert registry.headers[1]["If-Range"] == f'"{sha}"'  # never splice two versions of a file
    assert result.model.path.read_bytes() == (registry.root / "m.gguf").read_bytes()
    assert not (tmp_path / "store" / f"{sha}.part").exists()


def test_interruption_is_retried_within_one_call(registry, tmp_path: Path) -> None:
    url, sha, size = _publish(registry, "m.gguf", 300_000)
    registry.cut_after["m.gguf"] = 100_000
    store = ModelStore(tmp_path / "store", 10 * MB, retries=3)
    result = store.ensure("m", sha, url, size, protected=set())
    assert [(a.start_offset, a.bytes_transferred) for a in result.attempts] == [
        (0, 100_000),
        (100_000, 200_000),
    ]
    again = store.ensure("m", sha, url, size, protected=set())
    assert again.cached and again.bytes_transferred == 0


def test_wrong_sha256_is_refused_and_nothing_is_kept(registry, tmp_path: Path) -> None:
    url, _sha, size = _publish(registry, "m.gguf", 50_000)
    store = ModelStore(tmp_path / "store", 10 * MB)
    with pytest.raises(StoreError, match="sha256 mismatch"):
        store.ensure("m", "0" * 64, url, size, protected=set())
    assert store.models() == []
    assert list((tmp_path / "store").glob("*.gguf")) == []
    assert list((tmp_path / "store").glob("*.part")) == []


def test_lru_eviction_never_touches_protected_models(registry, tmp_path: Path) -> None:
    models = [_publish(registry, f"m{i}.gguf", 400_000, seed=i) for i in range(4)]
    store = ModelStore(tmp_path / "store", 1_000_000)
    for i, (url, sha, size) in enumerate(models[:2]):
        store.ensure(f"m{i}", sha, url, size, protected=set())
    store.touch(models[0][1])  # m0 used more recently than m1
    store.ensure("m2", models[2][1], models[2][0], 400_000, protected=set())
    assert {m.model_id for m in store.models()} == {"m0", "m2"}  # m1 was least recently used
    with pytest.raises(StoreError, match="held by models in use"):
        store.ensure(
            "m3", models[3][1], models[3][0], 400_000, protected={models[0][1], models[2][1]}
        )
    assert {m.model_id for m in store.models()} == {"m0", "m2"}


def test_model_larger_than_the_disk_budget_is_refused_before_downloading(registry, tmp_path):
    url, sha, size = _publish(registry, "big.gguf", 200_000)
    store = ModelStore(tmp_path / "store", 100_000)
    with pytest.raises(StoreError, match="disk budget"):
        store.ensure("big", sha, url, size, protected=set())
    assert registry.requests == []


def test_relative_urls_resolve_against_the_controller(registry, tmp_path: Path) -> None:
    _url, sha, size = _publish(registry, "m.gguf", 10_000)
    store = ModelStore(tmp_path / "store", MB, base_url=registry.url)
    assert store.ensure("m", sha, "/m.gguf", size, protected=set()).model.size_bytes == size
    reopened = ModelStore(tmp_path / "store", MB)
    assert reopened.get(sha) is not None and reopened.find("m") is not None


def test_progress_is_reported_up_to_the_full_size(registry, tmp_path: Path) -> None:
    url, sha, size = _publish(registry, "m.gguf", 250_000)
    seen: list[tuple[str, int, int]] = []
    store = ModelStore(tmp_path / "store", MB, progress=lambda *p: seen.append(p))
    store.ensure("m", sha, url, size, protected=set())
    done = [d for _, d, _ in seen]
    assert done == sorted(done) and done[-1] == size
    assert {(m, t) for m, _, t in seen} == {("m", size)}


def test_downloads_carry_the_registry_token(registry, tmp_path: Path) -> None:
    url, sha, size = _publish(registry, "m.gguf", 1000)
    store = ModelStore(tmp_path / "store", MB, headers={"Authorization": "Bearer reg-token"})
    store.ensure("m", sha, url, size, protected=set())
    assert registry.headers[0]["Authorization"] == "Bearer reg-token"
