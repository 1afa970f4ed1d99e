"""Per-device choice: the feasible option with the highest Psi, kept stable by hysteresis.

Each class's options are scored and class-filtered once; each device then
walks its class's survivors best first and takes the first that passes its
own checks. The device keeps its current option when that is feasible and
within the hysteresis margin of the best, so near-equal models do not flap.
Ties in Psi break on model id, then refinement off first, so the same input
always gives the same plan. The chooser returns the plan and the reasons.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from controller.planner.filters import (
    DeviceContext,
    Rejection,
    class_filter,
    device_context,
    device_rejection,
)
from controller.planner.scores import OptionScore
from controller.planner.types import Device, Exclusion, ModelSpec, Option, Pin, PlannerSettings
from shared.profiles import DeviceProfile


@dataclass(frozen=True)
class ClassView:
    """One class's scored options after the class filters, ready for many devices."""

    profile: DeviceProfile
    survivors: tuple[OptionScore, ...]
    rejected: Mapping[Option, Rejection]


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


def build_views(
    scores: Mapping[str, Sequence[OptionScore]],
    profiles: Mapping[str, DeviceProfile],
    models: Mapping[str, ModelSpec],
    settings: PlannerSettings,
    exclusions: Iterable[Exclusion] = (),
) -> dict[str, ClassView]:
    """Class-filter every class once."""
    excl = list(exclusions)
    views = {}
    for name, profile in profiles.items():
        survivors, rejected = class_filter(scores.get(name, ()), profile, models, settings, excl)
        views[name] = ClassView(profile, tuple(survivors), rejected)
    return views


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


def plan_devices(
    devices: Sequence[Device],
    views: Mapping[str, ClassView],
    models: Mapping[str, ModelSpec],
    settings: PlannerSettings,
    *,
    exclusions: Sequence[Exclusion] = (),
    pins: Mapping[str, Pin] | None = None,
) -> list[Decision]:
    """Per-device decisions in device-id order."""
    device_excl = [e for e in exclusions if e.device_id is not None]
    return [
        choose_for_device(
            d, views.get(d.device_class), models, settings, exclusions=device_excl, pins=pins
        )
        for d in sorted(devices, key=lambda d: d.device_id)
    ]
