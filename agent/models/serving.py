"""The serving model: swapped atomically, used one request at a time, with a bounded queue."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from agent.inference.types import ChatModel
from shared.strategies import DIRECT, Strategy

logger = logging.getLogger(__name__)
T = TypeVar("T")


class ChatRuntime(ChatModel, Protocol):
    """What serving needs from a loaded model (``agent.inference.runtime.ModelRuntime`` fits)."""

    model_id: str

    def close(self) -> None:
        """Free the model."""


@dataclass(frozen=True)
class Serving:
    """A loaded model and how it is served."""

    runtime: ChatRuntime
    model_id: str
    path: Path
    sha256: str | None = None
    strategy: Strategy = DIRECT


class QueueFull(RuntimeError):
    """More requests are waiting than the queue allows."""


class NoModel(RuntimeError):
    """No model is loaded yet."""


class ModelHost:
    """Holds the serving model; requests take turns; swaps wait for the running request."""

    def __init__(self, queue_size: int = 4) -> None:
        self.queue_size = queue_size
        self._serving: Serving | None = None
        self._run_lock = threading.Lock()
        self._admit_lock = threading.Lock()
        self._admitted = 0
        self.on_busy: Callable[[bool], None] | None = None

    @property
    def serving(self) -> Serving | None:
        """The model answering requests now."""
        return self._serving

    @property
    def admitted(self) -> int:
        """Requests running or waiting."""
        return self._admitted

    @contextmanager
    def admission(self) -> Iterator[None]:
        """Hold a place in the queue: one running plus ``queue_size`` waiting, else QueueFull."""
        with self._admit_lock:
            if self._admitted >= self.queue_size + 1:
                raise QueueFull(f"{self._admitted} requests running or waiting")
            self._admitted += 1
        try:
            yield
        finally:
            with self._admit_lock:
                self._admitted -= 1

    def run(self, work: Callable[[Serving], T]) -> T:
        """Run ``work`` with the serving model, alone (llama.cpp contexts are not shared)."""
        with self._run_lock:
            serving = self._serving
            if serving is None:
                raise NoModel("no model is loaded yet")
            self._notify(True)
            try:
                return work(serving)
            finally:
                self._notify(False)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Hold off requests (they wait in the queue) while something else uses the cores."""
        with self._run_lock:
            yield

    def swap(self, new: Serving) -> Serving | None:
        """Make ``new`` the serving model once the running request ends; return the old one."""
        with self._run_lock:
            old, self._serving = self._serving, new
        logger.info("now serving %s", new.model_id)
        if old is not None and old.runtime is not new.runtime:
            old.runtime.close()
        return old

    def close(self, timeout: float = 10.0) -> None:
        """Unload the serving model once the running request ends (give up after ``timeout``)."""
        if not self._run_lock.acquire(timeout=timeout):
            logger.warning("a request or benchmark is still running; not unloading the model")
            return
        try:
            old, self._serving = self._serving, None
        finally:
            self._run_lock.release()
        if old is not None:
            old.runtime.close()

    def _notify(self, busy: bool) -> None:
        if self.on_busy is not None:
            try:
                self.on_busy(busy)
            except Exception:  # noqa: BLE001 - a status light must not fail a request
                logger.exception("busy callback failed")
