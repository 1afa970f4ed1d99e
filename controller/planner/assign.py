"""Per-device choice: the feasible option with the highest Psi, kept stable by hysteresis.

Each class's options are scored and class-filtered once; each device then
walks its class's survivors best first and takes the first that passes its
own checks. The device keeps its current option when that is feasible and
within the hysteresis margin of the best, so near-equal models do not flap.
Ties in Psi break on model id, then refinement off first, so the same input
always gives the same plan. The chooser returns the plan and the reasons.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from controller.planner.filters import (
    ClassView,
    DeviceContext,
    Rejection,
    device_context,
    device_rejection,
)
from controller.planner.gc_pause import gc_paused
from controller.planner.matrix import feasibility_matrix
from controller.planner.scores import OptionScore
from controller.planner.types import Device, Exclusion, ModelSpec, Option, Pin, PlannerSettings


@dataclass(frozen=True)
class Decision:
    """What one device should run, the runner-up, and why every other option lost."""

    device_id: str
    device_class: str
    chosen: OptionScore | None
    runner_up: OptionScore | None
    kept_current: bool
    note: str
    device_rejected: tuple[Rejection, ...] = ()
    view: ClassView | None = field(default=None, repr=False, compare=False)

    @property
    def option(self) -> Option | None:
        """The chosen option, or None when nothing feasible exists."""
        return self.chosen.option if self.chosen else None

    def reasons(self) -> list[str]:
        """A sentence per option that was not chosen, with its numbers."""
        out = [str(r) for r in self.device_rejected]
        seen = {r.option for r in self.device_rejected}
        if self.view is not None:
            for option in sorted(self.view.rejected):
                out.append(str(self.view.rejected[option]))
            for s in self.view.survivors:
                if self.chosen and s.option != self.chosen.option and s.option not in seen:
                    out.append(
                        f"{s.option.label()}: feasible, Psi {s.psi:.4f} < chosen "
                        f"{self.chosen.psi:.4f}"
                    )
        return out


def _feasible(
    view: ClassView,
    ctx: DeviceContext,
    models: Mapping[str, ModelSpec],
    settings: PlannerSettings,
    limit: int,
) -> tuple[list[OptionScore], list[Rejection]]:
    """The best ``limit`` device-feasible survivors, and the rejections met on the way."""
    found: list[OptionScore] = []
    rejected: list[Rejection] = []
    for score in view.survivors:
        rejection = device_rejection(score, ctx, models, settings)
        if rejection is None:
            found.append(score)
            if len(found) == limit:
                break
        else:
            rejected.append(rejection)
    return found, rejected


def _current_score(
    view: ClassView, ctx: DeviceContext, models: Mapping[str, ModelSpec], settings: PlannerSettings
) -> OptionScore | None:
    current = ctx.device.current
    if current is None:
        return None
    for score in view.survivors:
        if score.option == current:
            return score if device_rejection(score, ctx, models, settings) is None else None
    return None


def unplanned(device: Device) -> Decision:
    """No option for a device: its engine cannot run one (the reason says why), or none fits."""
    if device.engine_problem is not None:
        note = f"engine cannot run models: {device.engine_problem}"
    else:
        note = "no feasible option"
    return Decision(device.device_id, device.device_class, None, None, False, note)


def choose_for_device(
    device: Device,
    view: ClassView | None,
    models: Mapping[str, ModelSpec],
    settings: PlannerSettings,
    *,
    exclusions: Sequence[Exclusion] = (),
    pins: Mapping[str, Pin] | None = None,
) -> Decision:
    """The best feasible option for one device, with hysteresis and reasons."""
    if device.engine_problem is not None:
        return unplanned(device)
    if view is None:
        return Decision(
            device.device_id,
            device.device_class,
            None,
            None,
            False,
            f"unknown device class {device.device_class!r}",
        )
    ctx = device_context(device, exclusions, pins or {})
    found, rejected = _feasible(view, ctx, models, settings, limit=2)
    if not found:
        note = "no feasible option" + (f" (pinned to {ctx.pin.model_id})" if ctx.pin else "")
        return Decision(
            device.device_id, device.device_class, None, None, False, note, tuple(rejected), view
        )
    best = found[0]
    current = _current_score(view, ctx, models, settings)
    if (
        current is not None
        and current.option != best.option
        and (current.psi * (1 + settings.hysteresis) >= best.psi)
    ):
        return Decision(
            device.device_id,
            device.device_class,
            current,
            best,
            True,
            f"kept current: within {settings.hysteresis:.0%} of the best",
            tuple(rejected),
            view,
        )
    runner_up = found[1] if len(found) > 1 else None
    note = "pinned" if ctx.pin else "best Psi"
    return Decision(
        device.device_id,
        device.device_class,
        best,
        runner_up,
        current is not None and current.option == best.option,
        note,
        tuple(rejected),
        view,
    )


@gc_paused
def plan_devices(
    devices: Sequence[Device],
    views: Mapping[str, ClassView],
    models: Mapping[str, ModelSpec],
    settings: PlannerSettings,
    *,
    exclusions: Sequence[Exclusion] = (),
    pins: Mapping[str, Pin] | None = None,
) -> list[Decision]:
    """Per-device decisions in device-id order; the same as ``choose_for_device`` on each.

    Vectorised per class over the feasibility matrix: the first feasible
    survivor is the best, the second the runner-up.
    """
    device_excl = [e for e in exclusions if e.device_id is not None]
    by_class: dict[str, list[Device]] = defaultdict(list)
    out: list[Decision] = []
    for device in devices:
        if device.engine_problem is not None:
            out.append(unplanned(device))
        else:
            by_class[device.device_class].append(device)
    for name, members in by_class.items():
        view = views.get(name)
        if view is None:
            out.extend(choose_for_device(d, None, models, settings) for d in members)
        else:
            out.extend(_plan_class(view, members, models, settings, device_excl, pins or {}))
    out.sort(key=lambda d: d.device_id)
    return out


def _plan_class(
    view: ClassView,
    members: list[Device],
    models: Mapping[str, ModelSpec],
    settings: PlannerSettings,
    exclusions: Sequence[Exclusion],
    pins: Mapping[str, Pin],
) -> list[Decision]:
    feasible = feasibility_matrix(view, members, models, settings, exclusions=exclusions, pins=pins)
    n = len(view.survivors)
    count = feasible.sum(axis=1) if n else np.zeros(len(members), dtype=int)
    best = feasible.argmax(axis=1) if n else count
    second = (feasible & (np.cumsum(feasible, axis=1) == 2)).argmax(axis=1) if n else count
    psi = np.array([s.psi for s in view.survivors])
    index = {s.option: j for j, s in enumerate(view.survivors)}
    cur = np.array([index.get(d.current, -1) if d.current else -1 for d in members], dtype=int)
    rows = np.arange(len(members))
    cur_ok = (cur >= 0) & (feasible[rows, cur.clip(0)] if n else False)
    keep = (
        cur_ok
        & (cur != best)
        & (
            psi[cur.clip(0)] * (1 + settings.hysteresis) >= psi[best.clip(0, max(n - 1, 0))]
            if n
            else False
        )
    )
    out = []
    for i, device in enumerate(members):
        fast = int(best[i]) == 0 and count[i] > 0 and (n == 1 or int(second[i]) == 1)
        if not fast:
            # Rare paths (nothing feasible, or options skipped): the scalar chooser explains.
            out.append(
                choose_for_device(device, view, models, settings, exclusions=exclusions, pins=pins)
            )
            continue
        out.append(
            _fast_decision(
                device,
                view,
                int(second[i]) if count[i] >= 2 else None,
                bool(keep[i]),
                int(cur[i]),
                pins,
                settings,
            )
        )
    return out


def _fast_decision(
    device: Device,
    view: ClassView,
    second: int | None,
    keep: bool,
    cur: int,
    pins: Mapping[str, Pin],
    settings: PlannerSettings,
) -> Decision:
    """The common case: the class's best option is feasible, and so is the next one checked."""
    best = view.survivors[0]
    runner = view.survivors[second] if second is not None else None
    if keep:
        return Decision(
            device.device_id,
            device.device_class,
            view.survivors[cur],
            best,
            True,
            f"kept current: within {settings.hysteresis:.0%} of the best",
            (),
            view,
        )
    note = "pinned" if device.device_id in pins else "best Psi"
    return Decision(device.device_id, device.device_class, best, runner, cur == 0, note, (), view)
