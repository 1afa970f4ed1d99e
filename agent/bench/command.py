"""The ``bench`` command: fetch the models it names, benchmark them and publish each result.

Models missing on the device are downloaded from the sources the command
carries (the controller's registry) into the model store, with the same
resume and sha256 check as ``assign``; a judge and a reference model make
the results carry a quality score q(m, k).

Serving pauses while a benchmark runs (requests queue, then get 429), so the
numbers are not disturbed by chat traffic and the two never share cores. Each
model is benchmarked in a fresh child process, so its peak RSS is its own and
not inflated by the model the agent is serving.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from agent.bench.runner import BenchConfig, run_bench
from agent.bench.suite_fetch import SuiteUnavailable, load_suite
from agent.engine.crash import name_exit, oom_kills
from agent.inference.refine import StageLimits
from agent.inference.types import InferenceError
from agent.link.commands import CommandFailed
from agent.models.fetch import fetch_model
from agent.models.serving import ModelHost
from agent.models.store import ModelStore, StoreError
from shared.demo_models import DEMO_MODELS, models_dir
from shared.messages import BenchBody, BenchCommand
from shared.profiles import DeviceProfile
from shared.suites.suite import MAX_SUITE_BYTES, Suite

logger = logging.getLogger(__name__)


class BenchCrashed(CommandFailed):
    """The benchmark's child process died; the message names how and what to do."""


def resolve_model(model_id: str, store: ModelStore, host: ModelHost) -> Path:
    """A model id's file: the serving model, the store, or a demo model on disk."""
    serving = host.serving
    if serving is not None and serving.model_id == model_id:
        return serving.path
    stored = store.find(model_id)
    if stored is not None:
        return stored.path
    demo = DEMO_MODELS.get(model_id)
    if demo is not None and (models_dir() / demo.filename).is_file():
        return models_dir() / demo.filename
    raise CommandFailed(
        f"model {model_id!r} is not in the local store and the command gives no source for it"
    )


@dataclass(frozen=True)
class BenchJob:
    """What a bench command runs on: the suite's items and every model file it names."""

    suite: Suite
    candidates: dict[str, Path]
    judge: Path | None = None
    reference: Path | None = None


def prepare_bench(
    command: BenchCommand,
    *,
    store: ModelStore,
    host: ModelHost,
    protected: set[str] | None = None,
    on_download: Callable[[], None] | None = None,
    memory_budget_mb: float | None = None,
) -> BenchJob:
    """Load the suite, then find every model named; download the missing ones with sources.

    A model with a source is used only at the source's sha256 (the serving file, the
    store, else a verified download); one without is looked up locally by id. Nothing
    the command names is evicted to make room for another it names, and a file larger
    than the memory budget is refused before it is downloaded.
    """
    if command.reference_model_id and not command.judge_model_id:
        raise CommandFailed("a reference model needs a judge model to score its answers")
    suite = _suite(command, store)  # a bad suite or category fails before any model download
    keep = (protected or set()) | {s.sha256 for s in command.sources}

    def path(model_id: str) -> Path:
        source = command.source(model_id)
        if source is None:
            return resolve_model(model_id, store, host)
        serving = host.serving
        if serving is not None and serving.sha256 == source.sha256:
            return serving.path
        fetched = fetch_model(
            store,
            source,
            protected=keep,
            on_download=on_download,
            memory_budget_mb=memory_budget_mb,
        )
        return fetched.model.path

    model_ids = list(command.model_ids) or _serving_id(host)
    return BenchJob(
        suite=suite,
        candidates={model_id: path(model_id) for model_id in model_ids},
        judge=path(command.judge_model_id) if command.judge_model_id else None,
        reference=path(command.reference_model_id) if command.reference_model_id else None,
    )


def run_bench_command(
    command: BenchCommand,
    job: BenchJob,
    *,
    profile: DeviceProfile,
    host: ModelHost,
    publish: Callable[[BenchBody], Any],
    limits: StageLimits | None = None,
    stopping: threading.Event | None = None,
) -> dict[str, Any]:
    """Benchmark every candidate of ``job`` (serving paused); publish one result each.

    ``stopping`` set (the agent is shutting down) ends the running benchmark's process
    and starts no further one.
    """
    run_ids = []
    with host.paused():
        for model_id, path in job.candidates.items():
            if stopping is not None and stopping.is_set():
                raise CommandFailed(STOPPING)
            config = BenchConfig.from_profile(
                profile,
                model_path=path,
                suite=job.suite,
                judge_path=job.judge,
                reference_path=job.reference,
                judge_model_id=command.judge_model_id,
                reference_model_id=command.reference_model_id,
                strategies=tuple(command.strategy_list()),
                command_id=command.command_id,
                model_id=model_id,
                limits=limits or StageLimits(),
            )
            try:
                body = run_isolated(config, stopping)
            except InferenceError as exc:
                raise CommandFailed(f"benchmark of {model_id} failed: {exc}") from None
            publish(body)
            run_ids.append(body.run_id)
    return {
        "models": list(job.candidates),
        "run_ids": run_ids,
        "suite": job.suite.name,
        "items": len(job.suite.items),
    }


def _suite(command: BenchCommand, store: ModelStore) -> Suite:
    """The command's suite (fetched once and cached by sha256), narrowed as it asks."""
    try:
        suite = load_suite(
            command.suite,
            cache_dir=store.root / "suites",
            download=lambda url: store.fetch_bytes(url, MAX_SUITE_BYTES),
        )
    except (SuiteUnavailable, StoreError) as exc:
        raise CommandFailed(str(exc)) from None
    selected = suite.filtered(command.categories, max_items=command.max_questions)
    if not selected.items:
        raise CommandFailed(f"suite {suite.name} has no items in categories {command.categories}")
    return selected


def run_isolated(config: BenchConfig, stopping: threading.Event | None = None) -> BenchBody:
    """Run the benchmark in a spawned process (a clean address space) and return its result.

    If the process dies, the error says how (SIGSEGV, SIGILL, OOM-killed, ...) and what to do.
    When ``stopping`` is set the process is ended and the command fails as interrupted.
    """
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    # daemon: an agent that stops does not wait for a benchmark, it ends it
    child = context.Process(
        target=_bench_in_child, args=(config, sender), name="bench", daemon=True
    )
    oom_before = oom_kills()
    child.start()
    sender.close()  # the child holds the only writer: EOF below means it is gone
    try:
        while not receiver.poll(STOP_POLL_S):
            if stopping is not None and stopping.is_set():
                child.terminate()
                raise CommandFailed(STOPPING)
        kind, payload = receiver.recv()
    except EOFError:
        kind, payload = "died", ""
    finally:
        receiver.close()
        child.join()
    if kind == "ok":
        return BenchBody.model_validate_json(payload)
    if kind == "failed":
        raise payload
    crash = name_exit(child.exitcode or 0, oom_killed=oom_kills() > oom_before)
    what = f"the benchmark process of {config.model_id or config.model_path.name}"
    raise BenchCrashed(crash.describe(what) if crash else f"{what} ended without a result")


STOPPING = "interrupted: the agent is stopping"
STOP_POLL_S = 0.25
"""How often a waiting benchmark checks whether the agent is stopping."""


def _bench_in_child(config: BenchConfig, sender: Connection) -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    model_id = config.model_id or config.model_path.name
    try:
        body = run_bench(config, _log_progress(model_id))
    except InferenceError as exc:
        sender.send(("failed", exc))  # re-raised as is in the parent
        return
    sender.send(("ok", body.model_dump_json()))


def _serving_id(host: ModelHost) -> list[str]:
    if host.serving is None:
        raise CommandFailed("no model is serving and no model_ids were given")
    return [host.serving.model_id]


def _log_progress(model_id: str) -> Callable[[str, int, int], None]:
    def report(phase: str, done: int, total: int) -> None:
        if done == total or done == 0:
            logger.info("bench %s: %s %d/%d", model_id, phase, done, total)

    return report
