"""Which (model, class) pairs to benchmark next, on which idle device, graded by whom.

A pair is worth profiling when its optimistic score (upper end of the quality
interval, or reference parity when the model was never judged; latency at
the lower end of the prediction) beats the class's best measured option: only
then could a measurement change the plan. Pairs that cannot fit the class's
memory budget even by the GGUF estimate are skipped. A class's benches carry
the fleet's judge and reference only when both fit its memory budget; other
classes profile speed, and their quality is pooled from classes that judged.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from controller.planner.filters import ClassView
from controller.planner.predict import ClassCalibration, calibrate, predicted_latency
from controller.planner.profiling import PairOutlook, next_pairs
from controller.planner.scores import OptionScore
from controller.planner.types import (
    BenchRun,
    Device,
    Exclusion,
    ModelSpec,
    PlannerSettings,
    ProfilingSettings,
)
from shared.messages import BenchCommand
from shared.perfics import perfics_score
from shared.profiles import DeviceProfile
from shared.strategies import REFINE_1

QUESTIONS_PER_PAIR = ProfilingSettings().questions_per_pair
"""Three questions per category: enough for a first bound, cheap on a Pi."""


def _optimistic(
    spec: ModelSpec,
    profile: DeviceProfile,
    cal: ClassCalibration,
    scores: Sequence[OptionScore],
    settings: PlannerSettings,
    questions: int,
) -> tuple[float, float, str]:
    """(optimistic Psi, predicted seconds to profile, where its quality came from)."""
    lat = predicted_latency(spec, profile, cal, settings, strategy=REFINE_1.name)
    fast = lat.p50_s / math.exp(settings.z_upper * lat.sigma)
    mine = [s for s in scores if s.option.model_id == spec.model_id]
    b_hi = max((s.b_interval.high for s in mine), default=1.0)
    i_hi = max((s.i_interval.high for s in mine if s.i_interval), default=0.0)
    psi = perfics_score(
        b_hi, max(i_hi, 0.0), spec.extrinsic, fast / profile.latency_budget_s, settings.weights
    )
    basis = "upper end of its quality interval" if mine else "never judged: reference parity"
    return psi, questions * 2 * lat.p50_s, basis


def profiling_outlooks(
    views: Mapping[str, ClassView],
    scores: Mapping[str, Sequence[OptionScore]],
    models: Mapping[str, ModelSpec],
    calibrations: Mapping[str, ClassCalibration],
    devices: Sequence[Device],
    settings: PlannerSettings,
    *,
    questions: int = QUESTIONS_PER_PAIR,
    exclusions: Sequence[Exclusion] = (),
) -> list[PairOutlook]:
    """An outlook for every pair not yet measured on its class that could fit there.

    A model the operator excluded from a class (or everywhere) is not profiled there.
    """
    per_class = Counter(d.device_class for d in devices)
    out = []
    for name, view in sorted(views.items()):
        if not per_class[name] or name not in calibrations:
            continue
        skip = {s.option.model_id for s in scores.get(name, ()) if not s.predicted}  # measured
        skip |= {e.model_id for e in exclusions if e.device_id is None and e.applies("", name)}
        best = max((s.psi for s in view.survivors if not s.predicted), default=0.0)
        for model_id, spec in sorted(models.items()):
            estimate = spec.memory_estimate_mb.get(name)
            if model_id in skip or estimate is None:
                continue
            if estimate * (1 + settings.memory_margin_frac) > view.profile.memory_budget_mb:
                continue
            psi, cost, basis = _optimistic(
                spec, view.profile, calibrations[name], scores.get(name, ()), settings, questions
            )
            out.append(PairOutlook(model_id, name, psi, best, per_class[name], cost, basis))
    return out


@dataclass(frozen=True)
class Grading:
    """Who grades one class's profiling benches; ``note`` says why, or why not."""

    judge_model_id: str | None
    reference_model_id: str | None
    note: str


def grading_for(
    profile: DeviceProfile,
    models: Mapping[str, ModelSpec],
    profiling: ProfilingSettings,
    settings: PlannerSettings,
) -> Grading:
    """The fleet's judge and reference, when both are set and fit the class's memory budget."""
    judge, reference = profiling.judge_model_id, profiling.reference_model_id
    if judge is None or reference is None:
        return Grading(None, None, "speed only: the fleet has no judge and reference configured")
    for role, model_id in (("judge", judge), ("reference", reference)):
        spec = models.get(model_id)
        estimate = spec.memory_estimate_mb.get(profile.name) if spec else None
        if estimate is None:
            return Grading(None, None, f"speed only: no memory estimate of the {role} {model_id}")
        need = estimate * (1 + settings.memory_margin_frac)
        if need > profile.memory_budget_mb:
            return Grading(
                None,
                None,
                f"speed only: the {role} {model_id} needs ~{need:.0f} MB, {profile.name} has "
                f"{profile.memory_budget_mb:.0f} MB (quality is pooled from classes that judge)",
            )
    return Grading(judge, reference, f"judged by {judge} against the reference {reference}")


@dataclass(frozen=True)
class ProfilingPick:
    """One bench command to send, its device, and why the pair was chosen."""

    device_id: str
    device_class: str
    command: BenchCommand
    reason: str

    @property
    def model_id(self) -> str:
        """The candidate model."""
        return self.command.model_ids[0]


def bench_commands(
    outlooks: Sequence[PairOutlook],
    devices: Sequence[Device],
    *,
    limit: int = 5,
    tag: str = "prof",
    grading: Mapping[str, Grading] | None = None,
    questions: int = QUESTIONS_PER_PAIR,
    strategies: Sequence[str] = (REFINE_1.name,),
    busy: Collection[str] = (),
) -> list[ProfilingPick]:
    """One bench command per chosen pair, each to a different idle online device of its class.

    ``busy`` devices (a bench still running) get none; ``grading`` per class names
    the judge and reference (absent: speed only).
    """
    taken = set(busy)
    out = []
    for o in next_pairs(list(outlooks), limit=limit):
        idle = [
            d
            for d in sorted(devices, key=lambda d: d.device_id)
            if d.device_class == o.device_class and d.online and d.device_id not in taken
        ]
        if not idle:
            continue
        device = idle[0]
        taken.add(device.device_id)
        grade = (grading or {}).get(o.device_class) or Grading(None, None, "speed only")
        command = BenchCommand(
            command_id=f"{tag}-{o.model_id}-{device.device_id}"[:64],
            model_ids=[o.model_id],
            judge_model_id=grade.judge_model_id,
            reference_model_id=grade.reference_model_id,
            refine=True,
            strategies=list(strategies),
            max_questions=questions,
        )
        reason = f"{o.reason()}; {grade.note}"
        out.append(ProfilingPick(device.device_id, o.device_class, command, reason))
    return out


def class_calibrations(
    profiles: Mapping[str, DeviceProfile],
    runs: Sequence[BenchRun],
    models: Mapping[str, ModelSpec],
    settings: PlannerSettings,
) -> dict[str, ClassCalibration]:
    """The calibrated rates of every class (nominal where nothing was measured)."""
    return {
        name: calibrate(p, [r for r in runs if r.device_class == name], models, settings)
        for name, p in profiles.items()
    }
