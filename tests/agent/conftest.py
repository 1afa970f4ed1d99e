"""Fixtures for the agent tests: runtimes, a private broker and a model file server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.inference.runtime import ModelRuntime
from tests.agent.daemon_support import FileServer


@pytest.fixture
def tiny_runtime(tiny_gguf: Path) -> Iterator[ModelRuntime]:
    """A runtime over the tiny generated model, one thread, deterministic."""
    runtime = ModelRuntime(tiny_gguf, threads=1, n_ctx=2048, seed=0)
    yield runtime
    runtime.close()


@pytest.fixture(scope="module")
def smollm2_runtime(smollm2_path: Path) -> Iterator[ModelRuntime]:
    """The real SmolLM2-135M-Instruct, one thread (shared by a module's slow tests)."""
    runtime = ModelRuntime(smollm2_path, threads=1, n_ctx=2048, seed=0)
    yield runtime
    runtime.close()


@pytest.fixture
def broker(mosquitto_factory):
    """A private broker: retained messages of these tests must not leak into other tests."""
    return mosquitto_factory()


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[FileServer]:
    """An HTTP server over ``tmp_path/registry`` that hands out model files like the registry."""
    root = tmp_path / "registry"
    root.mkdir()
    server = FileServer(root)
    yield server
    server.close()
