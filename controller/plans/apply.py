"""Carrying out a plan: assign commands in waves (canary per class first), rollback on failure.

The decisions are ``rollout.py``'s; this module reads command statuses and
serving metrics from the database, sends commands through the
``CommandSender`` and records progress on the plan's assignments. Call
``tick`` periodically (the CLI's ``plan apply --wait`` does) until it reports
the plan finished.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.orm.attributes import flag_modified
from sqlmodel import Session, col, select

from controller import models as db
from controller.core.db import session_scope
from controller.core.lease import LeaseLost
from controller.ingest.commands import CommandSender
from controller.models import utcnow
from controller.planner.rollout import (
    Change,
    StepFacts,
    WaveVerdict,
    healthy,
    make_waves,
    wave_verdict,
)
from controller.planner.types import Option, stored_option
from shared.messages import AssignCommand
from shared.strategies import REFINE_1

logger = logging.getLogger(__name__)

RESEND_AFTER_S = 5.0
"""A wave's command recorded but still unpublished this long ago lost its sender: resend it."""

Fence = Callable[[Session], None]


class PlanError(ValueError):
    """A plan that cannot be applied, with the reason."""


@dataclass(frozen=True)
class RolloutConfig:
    """Timeouts and health rules of a rollout."""

    timeout_s: float = 600.0
    require_metrics: bool = True
    max_error_rate: float = 0.05
    canaries_per_class: int = 1


class PlanApplier:
    """Applies drafts wave by wave and rolls back a failing wave.

    With a ``fence`` (the planner lease's check), every write of a rollout step
    happens in a transaction that first checks this replica still holds the
    lease, so a replica that lost it cannot advance, roll back or send.
    """

    def __init__(
        self,
        engine: Engine,
        commands: CommandSender,
        *,
        model_url: Callable[[str], str],
        config: RolloutConfig | None = None,
        fence: Fence | None = None,
    ) -> None:
        self.engine = engine
        self.commands = commands
        self.model_url = model_url
        self.config = config or RolloutConfig()
        self.fence = fence

    @contextmanager
    def _writing(self) -> Iterator[Session]:
        """A committing session, fenced when this applier runs under a lease."""
        with session_scope(self.engine) as session:
            if self.fence is not None:
                self.fence(session)
            yield session

    def apply(self, plan_id: int, *, created_by: str | None = None) -> str:
        """Mark the draft applied, split its changes into waves and send the first wave."""
        with self._writing() as session:
            plan = session.get(db.Plan, plan_id)
            if plan is None or plan.status != db.PlanStatus.DRAFT.value:
                raise PlanError(f"plan {plan_id} is not a draft")
            changes = self._changes(session, plan_id)
            waves = make_waves(changes, self.config.canaries_per_class)
            plan.status = db.PlanStatus.APPLIED.value
            plan.applied_at = utcnow()
            plan.params = {
                **plan.params,
                "rollout": {
                    "waves": [[c.device_id for c in w] for w in waves],
                    "wave": 0,
                    "previous": {
                        c.device_id: list(c.previous) if c.previous else None for c in changes
                    },
                    "state": "running" if waves else "done",
                    "wave_started_at": utcnow().isoformat(),
                },
            }
        if waves:
            self._send(plan_id, waves[0], created_by)
        return f"{len(changes)} changes in {len(waves)} waves"

    def _changes(self, session: Session, plan_id: int) -> list[Change]:
        rows = session.exec(
            select(db.Assignment).where(
                db.Assignment.plan_id == plan_id, db.Assignment.status == "change"
            )
        ).all()
        out = []
        for row in rows:
            device = session.get(db.Device, row.device_id)
            if device is None or row.model_id is None:
                continue
            previous = (
                stored_option(device.model_id, device.strategy, device.refine)
                if device.model_id
                else None
            )
            out.append(
                Change(
                    row.device_id,
                    row.device_class or "",
                    stored_option(row.model_id, row.strategy, row.refine),
                    previous,
                    device.status == "online",
                )
            )
        return out

    def _send(
        self,
        plan_id: int,
        device_ids: list[Change] | list[str],
        by: str | None,
        *,
        rollback: dict[str, Option] | None = None,
    ) -> None:
        ids = [c.device_id if isinstance(c, Change) else c for c in device_ids]
        for device_id in ids:
            target = self._target(plan_id, device_id, rollback)
            if target is None:
                continue
            try:
                self._send_one(plan_id, device_id, target, by, rollback=rollback is not None)
            except LeaseLost:
                raise  # not ours to record any more
            except Exception:
                # Recorded, so the next tick fails the wave now instead of waiting for it.
                self._mark(plan_id, device_id, "failed", None)
                raise

    def _send_one(
        self, plan_id: int, device_id: str, target: Option, by: str | None, *, rollback: bool
    ) -> None:
        suffix = "rb" if rollback else "as"
        command_id = f"p{plan_id}-{suffix}-{device_id}"[:64]
        model = self._model(target.model_id)
        command = AssignCommand(
            command_id=command_id,
            model_id=model.id,
            sha256=model.sha256,
            url=self.model_url(model.id),
            size_bytes=model.size_bytes,
            refine=target.strategy == REFINE_1.name,  # all an older agent reads
            strategy=target.strategy,
        )
        sent = self._already_sent(command_id)
        if sent is not None and _orphaned(sent):
            logger.info("plan %d: publishing %s, recorded by a sender that died", plan_id, sent.id)
            sent = self.commands.publish(sent)
        if sent is None:
            try:
                sent = self.commands.send(
                    device_id=device_id, plan_id=plan_id, created_by=by, command=command,
                    fence=self.fence,
                )  # fmt: skip
            except ValueError:
                sent = self._already_sent(command_id)
                if sent is None:
                    raise
        self._mark(
            plan_id,
            device_id,
            "rolled_back" if rollback else "sent",
            None if rollback else sent.id,
        )

    def _already_sent(self, command_id: str) -> db.Command | None:
        """The step's command when another ticker sent it first (same plan, step and device).

        The planner loop, ``POST /plans/{id}/advance`` and ``plan apply --wait`` may
        all tick one plan; command ids are fixed per step, so the second sender finds
        the first's command and records that instead of failing the wave.
        """
        with Session(self.engine) as session:
            return session.get(db.Command, command_id)

    def _target(
        self, plan_id: int, device_id: str, rollback: dict[str, Option] | None
    ) -> Option | None:
        if rollback is not None:
            return rollback.get(device_id)
        with Session(self.engine) as session:
            row = self._assignment(session, plan_id, device_id)
            return (
                stored_option(row.model_id, row.strategy, row.refine)
                if row and row.model_id
                else None
            )

    def _model(self, model_id: str) -> db.Model:
        with Session(self.engine) as session:
            model = session.get(db.Model, model_id)
        if model is None:
            raise PlanError(f"model {model_id} is not in the registry")
        return model

    @staticmethod
    def _assignment(session: Session, plan_id: int, device_id: str) -> db.Assignment | None:
        return session.exec(
            select(db.Assignment).where(
                db.Assignment.plan_id == plan_id, db.Assignment.device_id == device_id
            )
        ).first()

    def _mark(self, plan_id: int, device_id: str, status: str, command_id: str | None) -> None:
        with self._writing() as session:
            row = self._assignment(session, plan_id, device_id)
            if row is not None:
                # A device that failed keeps saying so; its rollback command is on record.
                if not (status == "rolled_back" and row.status == "failed"):
                    row.status = status
                if command_id is not None:
                    row.command_id = command_id
                session.add(row)

    def tick(self, plan_id: int, *, now: datetime | None = None) -> str:
        """Look at the running wave once: wait, start the next wave, finish, or roll back."""
        now = now or utcnow()
        with Session(self.engine) as session:
            plan = session.get(db.Plan, plan_id)
            if plan is None or "rollout" not in plan.params:
                raise PlanError(f"plan {plan_id} is not being applied")
            rollout = dict(plan.params["rollout"])
            if rollout["state"] != "running":
                return str(rollout["state"])
            wave = rollout["waves"][rollout["wave"]]
            started = _started_at(rollout, plan)
            facts = {d: self._facts(session, plan_id, d, started) for d in wave}
        self._resume(plan_id, facts)
        verdict, states = wave_verdict(
            facts, now, self.config.timeout_s, require_metrics=self.config.require_metrics
        )
        for device_id, (state, _) in states.items():
            if state.value != "waiting":
                self._mark(plan_id, device_id, state.value, None)
        if verdict is WaveVerdict.WAITING:
            return "running"
        if verdict is WaveVerdict.FAILED:
            return self._roll_back(plan_id, rollout, wave, states)
        rollout["wave"] += 1
        if rollout["wave"] >= len(rollout["waves"]):
            rollout["state"] = "done"
            self._save(plan_id, rollout, None)
            return "done"
        rollout["wave_started_at"] = utcnow().isoformat()
        self._save(plan_id, rollout, None)
        self._send(plan_id, rollout["waves"][rollout["wave"]], None)
        return "running"

    def _resume(self, plan_id: int, facts: dict[str, StepFacts]) -> None:
        """Finish sending a wave whose sender died (another replica, or this one restarted).

        Step command ids are fixed, so a step is never sent twice: ``_send_one``
        records what another sender recorded, and publishes it if that sender
        died before publishing.
        """
        unsent = [d for d, f in facts.items() if f.command_status == "unsent"]
        if unsent:
            self._send(plan_id, unsent, None)

    def _facts(
        self, session: Session, plan_id: int, device_id: str, wave_started_at: datetime
    ) -> StepFacts:
        row = self._assignment(session, plan_id, device_id)
        command = session.get(db.Command, row.command_id) if row and row.command_id else None
        if command is None and row is not None and row.status == "change":
            # Still being sent (by another thread, or a controller that stopped mid-wave):
            # waiting, so only the wave's timeout fails it.
            return StepFacts("unsent", wave_started_at)
        if command is None:
            return StepFacts("publish_failed", utcnow(), "no command recorded")
        health = None
        if command.acked_at is not None:
            metric = session.exec(
                select(db.ServingMetric)
                .where(
                    db.ServingMetric.device_id == device_id,
                    col(db.ServingMetric.sent_at) >= command.acked_at,
                )
                .order_by(col(db.ServingMetric.sent_at))
            ).first()
            if metric is not None:
                health = healthy(metric.requests, metric.errors, self.config.max_error_rate)
        return StepFacts(
            command.status, command.sent_at or command.created_at, command.reason, health
        )

    def _roll_back(self, plan_id: int, rollout: dict, wave: list[str], states: dict) -> str:
        reasons = [f"{d}: {why}" for d, (s, why) in states.items() if s.value == "failed"]
        previous = {
            d: stored_option(p[0], p[1])
            for d, p in rollout["previous"].items()
            if p is not None and d in wave
        }
        rollout["state"] = "rolled_back"
        self._save(plan_id, rollout, f"wave {rollout['wave']} failed: " + "; ".join(reasons))
        logger.warning(
            "plan %d: wave %d failed, rolling back: %s", plan_id, rollout["wave"], reasons
        )
        self._send(plan_id, wave, None, rollback=previous)
        return "rolled_back"

    def _save(self, plan_id: int, rollout: dict, failure: str | None) -> None:
        with self._writing() as session:
            plan = session.get(db.Plan, plan_id)
            assert plan is not None
            plan.params = {**plan.params, "rollout": rollout}
            flag_modified(plan, "params")
            if failure is not None:
                plan.status = db.PlanStatus.FAILED.value
                plan.reasons = [*plan.reasons, failure]
                flag_modified(plan, "reasons")
            session.add(plan)


def _orphaned(command: db.Command) -> bool:
    """Recorded but unpublished for :data:`RESEND_AFTER_S`: whoever recorded it is gone."""
    stale = utcnow() - timedelta(seconds=RESEND_AFTER_S)
    return command.status == db.CommandStatus.PENDING.value and command.created_at < stale


def _started_at(rollout: dict, plan: db.Plan) -> datetime:
    """When the running wave was sent (rollouts recorded before this was kept: when applied)."""
    if "wave_started_at" in rollout:
        return datetime.fromisoformat(rollout["wave_started_at"])
    return plan.applied_at or utcnow()
