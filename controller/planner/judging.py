"""Where judged answers are graded: the strongest online device that can hold the judge.

Devices whose class cannot fit the judge (a Pi Zero) generate answers only;
the controller sends them to one device that can. Among the devices whose
class budget fits the judge's memory estimate (with the planner's margin),
the one whose class runs the judge fastest wins: its measured decode speed
when the judge was benchmarked there, else the nominal rate of reading the
weights once per token (bandwidth / weight bytes). Ties go to a device that
already holds the file (no download), then the larger budget, then the id.
The controller host's own agent is a device like any other here.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from statistics import fmean

from controller.planner.types import BenchRun, Device, ModelSpec, PlannerSettings
from shared.profiles import DeviceProfile


@dataclass(frozen=True)
class JudgeSite:
    """The device chosen to grade, its expected speed, and why."""

    device_id: str
    device_class: str
    decode_tok_s: float
    measured: bool
    reason: str


def judge_speed(
    judge: ModelSpec, profile: DeviceProfile, runs: Sequence[BenchRun]
) -> tuple[float, bool]:
    """(decode tok/s of the judge on the class, whether it was measured there)."""
    measured = [
        r.decode_tok_s
        for r in runs
        if r.model_id == judge.model_id and r.device_class == profile.name and r.decode_tok_s
    ]
    if measured:
        return fmean(measured), True
    return profile.memory_bandwidth_gbs * 1e9 / max(judge.weights_bytes, 1), False


def choose_judge_site(
    judge: ModelSpec,
    devices: Sequence[Device],
    profiles: Mapping[str, DeviceProfile],
    runs: Sequence[BenchRun],
    settings: PlannerSettings,
    *,
    busy: Collection[str] = (),
) -> JudgeSite | None:
    """The device to grade on, or None when no idle online device can hold the judge."""
    ranked = []
    for device in devices:
        profile = profiles.get(device.device_class)
        estimate = judge.memory_estimate_mb.get(device.device_class)
        if (
            profile is None
            or estimate is None
            or not device.online
            or device.engine_problem
            or device.device_id in busy
            or (judge.archs is not None and device.arch not in judge.archs)
            or estimate * (1 + settings.memory_margin_frac) > profile.memory_budget_mb
        ):
            continue
        speed, measured = judge_speed(judge, profile, runs)
        holds = judge.model_id in device.cached_models
        key = (-speed, not holds, -profile.memory_budget_mb, device.device_id)
        ranked.append((key, device, profile, speed, measured))
    if not ranked:
        return None
    _, device, profile, speed, measured = min(ranked, key=lambda row: row[0])
    basis = "measured" if measured else "nominal, from memory bandwidth"
    reason = (
        f"{device.device_id} ({profile.name}, {profile.memory_budget_mb} MB) runs the judge "
        f"{judge.model_id} fastest of {len(ranked)} device(s) that can hold it: "
        f"{speed:.1f} tok/s ({basis})"
    )
    return JudgeSite(device.device_id, profile.name, speed, measured, reason)
