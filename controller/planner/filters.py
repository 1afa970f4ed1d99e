"""Feasibility filters: ``(survivors, reasons)`` with the numbers a person needs to act.

Class filters (memory and disk budget, latency budget, architecture,
class-wide exclusions) depend only on the class, so they run once per class;
device filters (free memory from the last heartbeat, free disk, the device's
own arch, pins and exclusions) run per device on the few options it reaches.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from controller.planner.scores import OptionScore
from controller.planner.types import Device, Exclusion, ModelSpec, Option, Pin, PlannerSettings
from shared.profiles import DeviceProfile

MB = 1_000_000


@dataclass(frozen=True)
class Rejection:
    """Why one option cannot run: the filter's name and a sentence with the numbers."""

    option: Option
    filter: str
    reason: str

    def __str__(self) -> str:
        return f"{self.option.label()}: {self.reason}"


def memory_need_mb(score: OptionScore, settings: PlannerSettings) -> float | None:
    """Measured peak RSS (else the GGUF estimate) plus the margin; None when neither is known."""
    if score.memory_mb is None:
        return None
    return score.memory_mb * (1 + settings.memory_margin_frac)


def _gb(mb: float) -> str:
    return f"{mb / 1000:.2f} GB"


def _memory_rejection(
    score: OptionScore, spec: ModelSpec, profile: DeviceProfile, settings: PlannerSettings
) -> str | None:
    need = memory_need_mb(score, settings)
    if need is None:
        return "no memory measurement or GGUF estimate"
    if need <= profile.memory_budget_mb:
        return None
    source = "measured" if score.memory_measured else "estimated"
    sequences = spec.parallel.get(profile.name, 1)
    counted = f" with KV for {sequences} parallel sequences" if sequences > 1 else ""
    return (
        f"needs {_gb(need)} ({source} {score.memory_mb:.0f} MB{counted} + "
        f"{settings.memory_margin_frac:.0%} margin), budget {_gb(profile.memory_budget_mb)}"
    )


def _latency_rejection(
    score: OptionScore, profile: DeviceProfile, settings: PlannerSettings
) -> str | None:
    bound = score.latency.upper_s(settings.z_upper)
    if bound <= profile.latency_budget_s:
        return None
    what = "predicted p95 upper bound" if score.latency.predicted else "measured p95"
    stages = f" (every stage of {score.option.strategy})" if score.option.refine else ""
    return f"{what} {bound:.1f} s{stages}, latency budget {profile.latency_budget_s:g} s"


def _class_rejection(
    score: OptionScore,
    spec: ModelSpec,
    profile: DeviceProfile,
    settings: PlannerSettings,
    excluded: bool,
) -> Rejection | None:
    checks = (
        ("excluded", "excluded by the operator for this class" if excluded else None),
        (
            "arch",
            None
            if spec.archs is None or profile.arch in spec.archs
            else f"built for {', '.join(sorted(spec.archs))}, class is {profile.arch}",
        ),
        (
            "disk",
            None
            if spec.file_size_bytes / MB <= profile.disk_budget_mb
            else f"file {_gb(spec.file_size_bytes / MB)}, disk budget "
            f"{_gb(profile.disk_budget_mb)}",
        ),
        ("memory", _memory_rejection(score, spec, profile, settings)),
        ("latency", _latency_rejection(score, profile, settings)),
    )
    for name, reason in checks:
        if reason is not None:
            return Rejection(score.option, name, reason)
    return None


def class_filter(
    scores: Sequence[OptionScore],
    profile: DeviceProfile,
    models: Mapping[str, ModelSpec],
    settings: PlannerSettings,
    exclusions: Iterable[Exclusion] = (),
) -> tuple[list[OptionScore], dict[Option, Rejection]]:
    """Options every device of the class could run (order kept), and why the rest cannot."""
    banned = {e.model_id for e in exclusions if e.device_id is None and e.applies("", profile.name)}
    survivors: list[OptionScore] = []
    reasons: dict[Option, Rejection] = {}
    for score in scores:
        rejection = _class_rejection(
            score,
            models[score.option.model_id],
            profile,
            settings,
            score.option.model_id in banned,
        )
        if rejection is None:
            survivors.append(score)
        else:
            reasons[score.option] = rejection
    return survivors, reasons


@dataclass(frozen=True)
class DeviceContext:
    """A device's own limits, prepared once before its options are checked."""

    device: Device
    excluded: frozenset[str]
    pin: Pin | None

    @property
    def usable_memory_mb(self) -> float | None:
        """Free memory plus what the replaced model frees, minus headroom (set by the caller)."""
        d = self.device
        if d.mem_available_mb is None:
            return None
        return d.mem_available_mb + (d.rss_mb or 0.0)


def device_context(
    device: Device, exclusions: Iterable[Exclusion], pins: Mapping[str, Pin]
) -> DeviceContext:
    """Collect the exclusions and pin that apply to one device."""
    excluded = frozenset(e.model_id for e in exclusions if e.device_id == device.device_id)
    return DeviceContext(device, excluded, pins.get(device.device_id))


def device_rejection(
    score: OptionScore,
    ctx: DeviceContext,
    models: Mapping[str, ModelSpec],
    settings: PlannerSettings,
) -> Rejection | None:
    """The first device-level reason ``score`` cannot run on this device, or None."""
    option, device = score.option, ctx.device
    pin = ctx.pin
    if pin is not None and (
        pin.model_id != option.model_id
        or (pin.strategy is not None and pin.strategy != option.strategy)
    ):
        want = Option(pin.model_id, pin.strategy).label() if pin.strategy else pin.model_id
        return Rejection(option, "pin", f"device is pinned to {want}")
    if option.model_id in ctx.excluded:
        return Rejection(option, "excluded", "excluded by the operator for this device")
    spec = models[option.model_id]
    if device.arch is not None and spec.archs is not None and device.arch not in spec.archs:
        return Rejection(
            option, "arch", f"built for {', '.join(sorted(spec.archs))}, device is {device.arch}"
        )
    return _device_resources(score, ctx, spec, settings)


def _device_resources(
    score: OptionScore, ctx: DeviceContext, spec: ModelSpec, settings: PlannerSettings
) -> Rejection | None:
    usable = ctx.usable_memory_mb
    need = memory_need_mb(score, settings) or 0.0
    if usable is not None and need > usable - settings.free_memory_headroom_mb:
        return Rejection(
            score.option,
            "free-memory",
            f"needs {_gb(need)}, device has {_gb(usable)} free after unloading its model, "
            f"minus {settings.free_memory_headroom_mb:.0f} MB headroom",
        )
    device = ctx.device
    size_mb = spec.file_size_bytes / MB
    if (
        device.disk_free_mb is not None
        and spec.model_id not in device.cached_models
        and size_mb > device.disk_free_mb - settings.disk_headroom_mb
    ):
        return Rejection(
            score.option,
            "disk-free",
            f"download {_gb(size_mb)}, disk has {_gb(device.disk_free_mb)} free "
            f"minus {settings.disk_headroom_mb:.0f} MB headroom",
        )
    return None


@dataclass(frozen=True)
class ClassView:
    """One class's scored options after the class filters, ready for many devices."""

    profile: DeviceProfile
    survivors: tuple[OptionScore, ...]
    rejected: Mapping[Option, Rejection]


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
