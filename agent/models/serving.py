"""The serving model: swapped atomically, shared by concurrent requests, with a bounded queue."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from agent.inference.types import ChatModel
from shared.messages import QueueDepth
from shared.strategies import DIRECT, Strategy

logger = logging.getLogger(__name__)
T = TypeVar("T")


class ChatRuntime(ChatModel, Protocol):
    """What serving needs from a loaded model (``agent.inference.batch.BatchEngine`` fits)."""

    model_id: str
    parallel: int  # requests it decodes at once; more wait inside it, in arrival order

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
    """More requests are running and waiting than the host allows."""


class NoModel(RuntimeError):
    """No model is loaded yet."""


class ModelHost:
    """Holds the serving model; requests share it; swaps and benchmarks wait for them to end."""

    def __init__(self, queue_size: int = 4) -> None:
        self.queue_size = queue_size
        self._serving: Serving | None = None
        self._gate = threading.Condition()
        self._running = 0
        self._exclusive = False
        self._exclusive_waiting = 0  # a swap or benchmark waiting holds back new requests
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

    @property
    def capacity(self) -> int:
        """Requests the serving model decodes at once."""
        serving = self._serving
        return serving.runtime.parallel if serving is not None else 1

    def depth(self) -> QueueDepth:
        """Requests decoding, those admitted and waiting, and how many may be admitted."""
        admitted, capacity = self._admitted, self.capacity
        return QueueDepth(
            active=min(admitted, capacity),
            waiting=max(0, admitted - capacity),
            bound=self.queue_size + capacity,
        )

    @contextmanager
    def admission(self) -> Iterator[None]:
        """Hold a place: ``capacity`` running plus ``queue_size`` waiting, else QueueFull."""
        with self._admit_lock:
            if self._admitted >= self.queue_size + self.capacity:
                raise QueueFull(f"{self._admitted} requests running or waiting")
            self._admitted += 1
        try:
            yield
        finally:
            with self._admit_lock:
                self._admitted -= 1

    def run(self, work: Callable[[Serving], T]) -> T:
        """Run ``work`` with the serving model, beside other requests (the model batches them)."""
        with self._gate:
            while self._exclusive or self._exclusive_waiting:
                self._gate.wait()
            serving = self._serving
            if serving is None:
                raise NoModel("no model is loaded yet")
            self._running += 1
            first = self._running == 1
        if first:
            self._notify(True)
        try:
            return work(serving)
        finally:
            with self._gate:
                self._running -= 1
                last = self._running == 0
                self._gate.notify_all()
            if last:
                self._notify(False)

    def _acquire(self, timeout: float | None = None) -> bool:
        """Take the model for ourselves once the running requests end."""
        with self._gate:
            self._exclusive_waiting += 1
            try:
                idle = self._gate.wait_for(
                    lambda: not self._exclusive and not self._running, timeout
                )
            finally:
                self._exclusive_waiting -= 1
            if idle:
                self._exclusive = True
            else:
                self._gate.notify_all()
            return idle

    def _release(self) -> None:
        with self._gate:
            self._exclusive = False
            self._gate.notify_all()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Hold off requests (they wait in the queue) while something else uses the cores."""
        self._acquire()
        try:
            yield
        finally:
            self._release()

    def swap(self, new: Serving) -> Serving | None:
        """Make ``new`` the serving model once the running requests end; return the old one."""
        with self.paused():
            old, self._serving = self._serving, new
        logger.info("now serving %s", new.model_id)
        if old is not None and old.runtime is not new.runtime:
            old.runtime.close()
        return old

    def close(self, timeout: float = 10.0) -> None:
        """Unload the serving model once the running requests end (give up after ``timeout``)."""
        if not self._acquire(timeout):
            logger.warning("a request or benchmark is still running; not unloading the model")
            return
        try:
            old, self._serving = self._serving, None
        finally:
            self._release()
        if old is not None:
            old.runtime.close()

    def _notify(self, busy: bool) -> None:
        if self.on_busy is not None:
            try:
                self.on_busy(busy)
            except Exception:  # noqa: BLE001 - a status light must not fail a request
                logger.exception("busy callback failed")
