"""Fixtures for the agent's inference tests: runtimes over the tiny and the real models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.runtime import ModelRuntime


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
