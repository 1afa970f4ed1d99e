"""Assigning a model: fetch, verify, check the memory budget, load, swap, keep a rollback.

Anything that fails leaves the previous model serving. The assignment (and
the previous one, for rollback) is written to ``assignment.json`` so a
restarted agent serves what it was told to serve.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.link.commands import CommandFailed
from agent.models.assignment import Assignment, read_assignments, write_assignments
from agent.models.fetch import fetch_model
from agent.models.serving import ChatRuntime, ModelHost, Serving
from agent.inference.types import InferenceError, model_id_for
from agent.inference.batch import BatchEngine
from agent.models.store import ModelStore
from agent.models.store import sha256_file
from shared.messages import AssignCommand
from shared.profiles import DeviceProfile
from shared.strategies import DIRECT, Strategy

logger = logging.getLogger(__name__)

RuntimeFactory = Callable[[Path, str, int | None], ChatRuntime]
"""(path, model_id, n_ctx) -> a loaded runtime; raises InferenceError."""


def runtime_factory(profile: Callable[[], DeviceProfile]) -> RuntimeFactory:
    """Load for serving under the current profile (budget, threads, KV type, parallel sequences)."""

    def load(path: Path, model_id: str, n_ctx: int | None) -> ChatRuntime:
        return BatchEngine(path, profile=profile(), n_ctx=n_ctx, model_id=model_id)

    return load


class Assigner:
    """Carries out ``assign`` commands against the store and the host."""

    def __init__(
        self,
        store: ModelStore,
        host: ModelHost,
        load: RuntimeFactory,
        state_file: Path,
        *,
        memory_budget_mb: Callable[[], float] | None = None,
    ) -> None:
        self.store, self.host, self.load = store, host, load
        self.state_file = state_file
        self.memory_budget_mb = memory_budget_mb
        self.current: Assignment | None = None
        self.previous: Assignment | None = None

    def protected(self) -> set[str]:
        """Hashes the store must never evict: the serving and the rollback model."""
        return {a.sha256 for a in (self.current, self.previous) if a and a.sha256}

    def assign(self, command: AssignCommand, on_download: Callable[[], None]) -> dict[str, Any]:
        """Serve the commanded model; raise CommandFailed (old model untouched) if not possible."""
        current, strategy = self.current, command.served_strategy().name
        if current and current.sha256 == command.sha256 and self.host.serving is not None:
            reload = command.n_ctx is not None and command.n_ctx != current.n_ctx
            self._serve(current, strategy, command.n_ctx or current.n_ctx, reload=reload)
            return {"model_id": command.model_id, "already_serving": True, "reloaded": reload}
        result = fetch_model(
            self.store,
            command,
            protected=self.protected(),
            on_download=on_download,
            memory_budget_mb=self.memory_budget_mb() if self.memory_budget_mb else None,
        )
        wanted = Assignment(
            command.model_id, command.sha256, str(result.model.path), strategy, command.n_ctx
        )
        self._serve(wanted, strategy, command.n_ctx, reload=True)
        return {
            "model_id": command.model_id,
            "sha256": command.sha256,
            "cached": result.cached,
            "bytes_transferred": result.bytes_transferred,
        }

    def _serve(self, wanted: Assignment, strategy: str, n_ctx: int | None, *, reload: bool) -> None:
        serving = self.host.serving
        if reload or serving is None:
            try:
                runtime = self.load(Path(wanted.path), wanted.model_id, n_ctx)
            except InferenceError as exc:
                raise CommandFailed(f"cannot serve {wanted.model_id}: {exc}") from None
        else:
            runtime = serving.runtime
        old = self.current
        serving = Serving(
            runtime, wanted.model_id, Path(wanted.path), wanted.sha256, Strategy.parse(strategy)
        )
        self.host.swap(serving)
        self.current = Assignment(wanted.model_id, wanted.sha256, wanted.path, strategy, n_ctx)
        if reload and old is not None and old.sha256 != wanted.sha256:
            self.previous = old
        if wanted.sha256:
            self.store.touch(wanted.sha256)
        self._save()

    def restore(self, initial_model: Path | None) -> str | None:
        """At start: serve the persisted assignment, else ``initial_model``; return a problem."""
        candidates = self._load_saved() + self._initial(initial_model)
        problems = []
        for candidate in candidates:
            try:
                self._serve(candidate, candidate.strategy, candidate.n_ctx, reload=True)
                return None
            except CommandFailed as exc:
                logger.error("cannot serve %s at start: %s", candidate.model_id, exc)
                problems.append(str(exc))
        if initial_model is not None and not candidates:
            problems.append(f"initial_model {initial_model} does not exist")
        return "; ".join(problems) or None

    def _initial(self, path: Path | None) -> list[Assignment]:
        if path is None:
            return []
        if not path.is_file():
            logger.error("initial_model %s does not exist", path)
            return []
        return [Assignment(model_id_for(path), sha256_file(path), str(path))]

    def _load_saved(self) -> list[Assignment]:
        current, previous = read_assignments(self.state_file)
        if current is not None and previous is not None:
            self.previous = previous
        saved = [a for a in (current, previous) if a is not None]
        return [a for a in saved if Path(a.path).is_file()]

    def _save(self) -> None:
        write_assignments(self.state_file, self.current, self.previous)
