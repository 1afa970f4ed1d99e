"""The bench command's isolated runner: results and errors cross the process boundary."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path

import pytest

from agent.bench.command import run_isolated
from agent.bench.runner import BenchConfig
from agent.inference.types import ModelLoadError
from agent.link.commands import CommandFailed
from shared.strategies import DIRECT
from shared.suites.builtin import load_builtin

pytestmark = pytest.mark.timeout(120)


def test_isolated_run_returns_the_child_result(tiny_gguf: Path) -> None:
    suite = load_builtin().filtered([], max_items=1)
    body = run_isolated(
        BenchConfig(
            model_path=tiny_gguf, suite=suite, strategies=(DIRECT,), repetitions=1, model_id="tiny"
        )
    )
    assert body.model.model_id == "tiny" and body.questions[0].item_id == suite.items[0].id
    assert body.peak_rss_mb > 0


def test_isolated_run_raises_the_child_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"nope" * 10)
    with pytest.raises(ModelLoadError):
        run_isolated(BenchConfig(model_path=junk))


def test_a_stopping_agent_ends_the_running_benchmark_process(tiny_gguf: Path) -> None:
    # the whole built-in suite takes far longer than the stop request below
    config = BenchConfig(model_path=tiny_gguf, suite=load_builtin(), repetitions=3)
    stopping = threading.Event()
    threading.Timer(2.0, stopping.set).start()
    started = time.monotonic()
    before = set(multiprocessing.active_children())
    with pytest.raises(CommandFailed, match="stopping"):
        run_isolated(config, stopping)
    # ended within a poll interval plus the child's exit, not after the whole suite
    assert time.monotonic() - started < 60
    assert not set(multiprocessing.active_children()) - before
