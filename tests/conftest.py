"""Fixtures for real parts: a Mosquitto broker, generated GGUF models, the demo models,
Debian's Chromium."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from agent.engine.tiny_gguf import TinyModelSpec, write_tiny_gguf
from controller.core.config import ControllerSettings
from shared.demo_models import DEMO_MODELS, models_dir
from tests.support.broker import MOSQUITTO, MosquittoBroker
from tests.support.browser import CHROMIUM, headless_chromium


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoBroker]:
    """A Mosquitto shared by the whole session; tests that stop a broker use their own."""
    if not os.path.exists(MOSQUITTO):
        pytest.fail("mosquitto is not installed: run `make test`, which installs it")
    broker = MosquittoBroker(tmp_path_factory.mktemp("mosquitto")).start()
    yield broker
    broker.stop()


@pytest.fixture
def mosquitto_factory(tmp_path: Path) -> Iterator[Callable[..., MosquittoBroker]]:
    """Start private brokers (with extra config lines); all are stopped after the test."""
    started: list[MosquittoBroker] = []

    def start(
        extra_config: list[str] | None = None, *, generated: ControllerSettings | None = None
    ) -> MosquittoBroker:
        """``generated``: run the files ``mosquitto-config`` wrote for these settings."""
        workdir = tmp_path / f"broker{len(started)}"
        if generated is None:
            broker = MosquittoBroker(workdir, extra_config or [])
        else:
            broker = MosquittoBroker(
                workdir,
                port=generated.mosquitto_listener_port,
                generated_config=generated.broker_dir / "mosquitto.conf",
            )
        started.append(broker.start())
        return broker

    yield start
    for broker in started:
        broker.stop()


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight llama GGUF (Q4_0) that llama.cpp loads in milliseconds."""
    return write_tiny_gguf(tmp_path_factory.mktemp("models") / "tiny-llama.Q4_0.gguf")


@pytest.fixture(scope="session")
def tiny_gguf_factory(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """Write tiny GGUFs of other shapes: ``tiny_gguf_factory(name, n_embd=128, ...)``."""
    root = tmp_path_factory.mktemp("models-custom")

    def make(name: str, **spec: object) -> Path:
        return write_tiny_gguf(root / f"{name}.gguf", TinyModelSpec(name=name, **spec))  # type: ignore[arg-type]

    return make


def _demo_model(key: str) -> Path:
    path = models_dir() / DEMO_MODELS[key].filename
    if not path.exists():
        pytest.fail(f"{path} is missing: run `edgefleet models fetch-demo` (make test does)")
    return path


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    """The real SmolLM2-135M-Instruct Q4_1, fetched from PyPI by `make test`."""
    return _demo_model("smollm2-135m-instruct-q4_1")


@pytest.fixture(scope="session")
def gemma3_path() -> Path:
    """The real Gemma-3-270M Q4_K_M (a base model), fetched from PyPI by `make test`."""
    return _demo_model("gemma3-270m-q4_k_m")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, shared by a module's tests (see tests/support/browser.py).

    Module-scoped, so it is closed before the next module: while it is open, playwright's
    loop counts as running and a later test's ``asyncio.run()`` would fail.
    """
    if not CHROMIUM.exists():
        pytest.fail("chromium is not installed: run `make system-deps`, which installs it")
    with headless_chromium() as launched:
        yield launched
