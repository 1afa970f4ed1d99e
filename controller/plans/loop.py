"""The planner's background loop: advance running rollouts, notice events, re-plan when due.

Events: a device joined, a device went offline, a benchmark changed a score
by more than the hysteresis margin. They feed a :class:`ReplanTrigger`, so a
burst gives one new draft; with ``auto_apply`` the draft is also applied
(never while another rollout is running). With a ``profiler`` (setting
``planner_auto_profile``), it also sends a profiling round every
``profile_interval_s``; the profiler itself skips devices still benchmarking.
With a ``grader`` (a fleet judge is configured), it sends judged answers that no
device graded yet to the device best able to hold the judge, every ``grade_interval_s``.

With several controller replicas, each runs a loop but only the holder of
the planner :class:`~controller.core.lease.Lease` steps it; the others wait
and take over within the lease's ttl when the holder dies.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from controller import models as db
from controller.core.lease import Lease, LeaseLost
from controller.planner.scores import OptionScore
from controller.planner.triggers import ReplanTrigger, score_shifts
from controller.planner.types import PlannerSettings
from controller.plans.apply import PlanApplier, PlanError
from controller.plans.grading import Grader
from controller.plans.inputs import current_scores
from controller.plans.profiler import Profiler, ProfilingError
from controller.plans.service import draft_plan

logger = logging.getLogger(__name__)


class PlannerLoop:
    """Call :meth:`step` periodically (its own thread via :meth:`start`, or a caller's)."""

    def __init__(
        self,
        engine: Engine,
        applier: PlanApplier | None,
        *,
        settings: PlannerSettings | None = None,
        trigger: ReplanTrigger | None = None,
        auto_apply: bool = False,
        interval_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        profiler: Profiler | None = None,
        profile_interval_s: float = 600.0,
        grader: Grader | None = None,
        grade_interval_s: float = 10.0,
        lease: Lease | None = None,
    ) -> None:
        self.engine, self.applier = engine, applier
        self.settings = settings or PlannerSettings()
        self.trigger = trigger or ReplanTrigger()
        self.auto_apply, self.interval_s, self.clock = auto_apply, interval_s, clock
        self.profiler, self.profile_interval_s = profiler, profile_interval_s
        self.grader, self.grade_interval_s = grader, grade_interval_s
        self._next_grade: float | None = None
        self.lease = lease
        self._next_profile: float | None = None
        self._devices: dict[str, str | None] | None = None
        self._runs = -1
        self._scores: dict[str, list[OptionScore]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.drafts: list[int] = []

    def start(self) -> PlannerLoop:
        """Run :meth:`step` every ``interval_s`` in a daemon thread (while holding the lease)."""
        if self.lease is not None:
            self.lease.start()
        self._thread = threading.Thread(target=self._run, name="planner-loop", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread after its current step."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self.lease is not None:
            self.lease.stop()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            if self.lease is not None and not self.lease.held:
                self._forget()
                continue
            try:
                self.step()
            except LeaseLost as exc:
                logger.info("planner step stopped: %s", exc)
            except Exception:  # the loop must survive one bad step (logged with traceback)
                logger.exception("planner loop step failed")

    def _forget(self) -> None:
        """Drop what this replica saw while it led: the next leadership starts from the DB."""
        self._devices, self._runs, self._scores, self._next_profile = None, -1, {}, None

    def step(self, now: float | None = None) -> list[str] | None:
        """One pass; returns the reasons when it drafted a new plan."""
        now = self.clock() if now is None else now
        running = self._advance_rollouts()
        self._notice_devices(now)
        self._notice_scores(now)
        self._profile(now)
        self._grade(now)
        reasons = self.trigger.due(now)
        if reasons is None:
            return None
        plan_id = draft_plan(self.engine, settings=self.settings, created_by="planner-loop")
        self.drafts.append(plan_id)
        logger.info("re-planned (plan %d): %s", plan_id, "; ".join(reasons))
        if self.auto_apply and self.applier is not None and not running:
            self.applier.apply(plan_id, created_by="planner-loop")
        return reasons

    def _profile(self, now: float) -> None:
        if self.profiler is None or (self._next_profile is not None and now < self._next_profile):
            return
        self._next_profile = now + self.profile_interval_s
        try:
            sent = self.profiler.run(created_by="planner-loop")
        except ProfilingError as exc:
            logger.error("profiling round skipped: %s", exc)
            return
        for item in sent:
            logger.info("profiling %s on %s: %s", item.model_id, item.device_id, item.reason)

    def _grade(self, now: float) -> None:
        if self.grader is None or (self._next_grade is not None and now < self._next_grade):
            return
        self._next_grade = now + self.grade_interval_s
        self.grader.run(created_by="planner-loop")

    def _advance_rollouts(self) -> bool:
        if self.applier is None:
            return False
        with Session(self.engine) as session:
            ids = session.exec(
                select(db.Plan.id).where(db.Plan.status == db.PlanStatus.APPLIED.value)
            ).all()
        running = False
        for plan_id in ids:
            try:
                running |= self.applier.tick(int(plan_id or 0)) == "running"
            except PlanError:
                continue
        return running

    def _notice_devices(self, now: float) -> None:
        with Session(self.engine) as session:
            rows = session.exec(select(db.Device.id, db.Device.status)).all()
        devices: dict[str, str | None] = dict(rows)
        if self._devices is not None:
            for device_id, status in sorted(devices.items()):
                before = self._devices.get(device_id, "absent")
                if before == "absent":
                    self.trigger.note(f"device {device_id} joined", now)
                elif status == "offline" and before != "offline":
                    self.trigger.note(f"device {device_id} went offline", now)
        self._devices = devices

    def _notice_scores(self, now: float) -> None:
        with Session(self.engine) as session:
            runs = session.exec(select(func.count(col(db.BenchmarkRun.id)))).one()
            if runs == self._runs:
                return
            scores = current_scores(session, self.settings)
        if self._runs >= 0:
            for reason in score_shifts(self._scores, scores, self.settings.hysteresis):
                self.trigger.note(reason, now)
        self._runs, self._scores = runs, scores
