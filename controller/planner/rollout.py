"""Applying a plan in waves: a canary per class first, then the rest; roll a failing wave back.

Pure decisions over plain data; the service feeds it command statuses and
serving metrics from the database and carries out what it returns. A wave
succeeds when every device in it acknowledged ``ok`` and its first serving
metrics after the ack are healthy; it fails on an error ack, a publish
failure, unhealthy metrics, or no success within the timeout. A failed wave
is rolled back (its devices are told to run their previous option again) and
later waves are never sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from controller.planner.types import Option


@dataclass(frozen=True)
class Change:
    """One device moving from ``previous`` to ``target``."""

    device_id: str
    device_class: str
    target: Option
    previous: Option | None
    online: bool = True


def make_waves(changes: Sequence[Change], canaries_per_class: int = 1) -> list[list[Change]]:
    """Wave 0: the first online device(s) of each class (by id); wave 1: everyone else."""
    by_class: dict[str, list[Change]] = {}
    for change in sorted(changes, key=lambda c: (not c.online, c.device_id)):
        by_class.setdefault(change.device_class, []).append(change)
    canary = [c for cls in sorted(by_class) for c in by_class[cls][:canaries_per_class]]
    rest = [c for cls in sorted(by_class) for c in by_class[cls][canaries_per_class:]]
    waves = [sorted(canary, key=lambda c: c.device_id), sorted(rest, key=lambda c: c.device_id)]
    return [w for w in waves if w]


class StepState(StrEnum):
    """Where one device's change stands."""

    WAITING = "waiting"
    OK = "ok"
    FAILED = "failed"


@dataclass(frozen=True)
class StepFacts:
    """What the database says about one sent change."""

    command_status: str
    sent_at: datetime
    reason: str | None = None
    healthy: bool | None = None
    """None: no serving metrics since the ack yet."""


def step_state(
    facts: StepFacts, now: datetime, timeout_s: float, *, require_metrics: bool = True
) -> tuple[StepState, str]:
    """Classify one device of a wave, with a sentence for the plan's history."""
    if facts.command_status in ("error", "publish_failed"):
        return StepState.FAILED, f"command {facts.command_status}: {facts.reason or 'no reason'}"
    if facts.command_status == "ok" and facts.healthy is True:
        return StepState.OK, "acknowledged, serving metrics healthy"
    if facts.command_status == "ok" and facts.healthy is None and not require_metrics:
        return StepState.OK, "acknowledged"
    if facts.command_status == "ok" and facts.healthy is False:
        return StepState.FAILED, "acknowledged, but its first serving metrics are unhealthy"
    waited = (now - facts.sent_at).total_seconds()
    if waited > timeout_s:
        return StepState.FAILED, f"no ok ack and healthy metrics after {waited:.0f} s"
    return StepState.WAITING, f"waiting ({facts.command_status}) for {waited:.0f} s"


class WaveVerdict(StrEnum):
    """The outcome of one look at a wave."""

    WAITING = "waiting"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


def wave_verdict(
    facts: Mapping[str, StepFacts],
    now: datetime,
    timeout_s: float,
    *,
    require_metrics: bool = True,
) -> tuple[WaveVerdict, dict[str, tuple[StepState, str]]]:
    """Failed as soon as one device fails; succeeded when all are ok; else waiting."""
    states = {
        d: step_state(f, now, timeout_s, require_metrics=require_metrics)
        for d, f in sorted(facts.items())
    }
    if any(s is StepState.FAILED for s, _ in states.values()):
        return WaveVerdict.FAILED, states
    if all(s is StepState.OK for s, _ in states.values()):
        return WaveVerdict.SUCCEEDED, states
    return WaveVerdict.WAITING, states


def healthy(requests: int, errors: int, max_error_rate: float) -> bool:
    """Serving health from one metrics report: its error rate within the limit."""
    if errors == 0:
        return True
    return requests > 0 and errors / requests <= max_error_rate
