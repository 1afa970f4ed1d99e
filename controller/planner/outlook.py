"""Which (model, class) pairs to benchmark next, and on which idle device.

A pair is worth profiling when its optimistic score (upper end of the quality
interval, or reference parity when the model was never judged; latency at
the lower end of the prediction) beats the class's best measured option: only
then could a measurement change the plan. Pairs that cannot fit the class's
memory budget even by the GGUF estimate are skipped.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence

from controller.planner.filters import ClassView
from controller.planner.predict import ClassCalibration, calibrate, predicted_latency
from controller.planner.profiling import PairOutlook, next_pairs
from controller.planner.scores import OptionScore
from controller.planner.types import BenchRun, Device, ModelSpec, PlannerSettings
from shared.messages import BenchCommand
from shared.perfics import perfics_score
from shared.profiles import DeviceProfile

QUESTIONS_PER_PAIR = 27
"""Three questions per category: enough for a first bound, cheap on a Pi."""


def _optimistic(
    spec: ModelSpec,
    profile: DeviceProfile,
    cal: ClassCalibration,
    scores: Sequence[OptionScore],
    settings: PlannerSettings,
) -> tuple[float, float]:
    """(optimistic Psi, predicted seconds to profile) for one unmeasured pair."""
    lat = predicted_latency(spec, profile, cal, settings, refine=True)
    fast = lat.p50_s / math.exp(settings.z_upper * lat.sigma)
    mine = [s for s in scores if s.option.model_id == spec.model_id]
    b_hi = max((s.b_interval.high for s in mine), default=1.0)
    i_hi = max((s.i_interval.high for s in mine if s.i_interval), default=0.0)
    psi = perfics_score(
        b_hi, max(i_hi, 0.0), spec.extrinsic, fast / profile.latency_budget_s, settings.weights
    )
    return psi, QUESTIONS_PER_PAIR * 2 * lat.p50_s


def profiling_outlooks(
    views: Mapping[str, ClassView],
    scores: Mapping[str, Sequence[OptionScore]],
    models: Mapping[str, ModelSpec],
    calibrations: Mapping[str, ClassCalibration],
    devices: Sequence[Device],
    settings: PlannerSettings,
) -> list[PairOutlook]:
    """An outlook for every pair not yet measured on its class that could fit there."""
    per_class = Counter(d.device_class for d in devices)
    out = []
    for name, view in sorted(views.items()):
        if not per_class[name] or name not in calibrations:
            continue
        measured = {s.option.model_id for s in scores.get(name, ()) if not s.predicted}
        best = max((s.psi for s in view.survivors if not s.predicted), default=0.0)
        for model_id, spec in sorted(models.items()):
            estimate = spec.memory_estimate_mb.get(name)
            if model_id in measured or estimate is None:
                continue
            if estimate * (1 + settings.memory_margin_frac) > view.profile.memory_budget_mb:
                continue
            psi, cost = _optimistic(
                spec, view.profile, calibrations[name], scores.get(name, ()), settings
            )
            out.append(PairOutlook(model_id, name, psi, best, per_class[name], cost))
    return out


def bench_commands(
    outlooks: Sequence[PairOutlook], devices: Sequence[Device], *, limit: int = 5, tag: str = "prof"
) -> list[tuple[str, BenchCommand]]:
    """One bench command per chosen pair, each to a different online device of its class."""
    busy: set[str] = set()
    out = []
    for o in next_pairs(list(outlooks), limit=limit):
        idle = [
            d
            for d in sorted(devices, key=lambda d: d.device_id)
            if d.device_class == o.device_class and d.online and d.device_id not in busy
        ]
        if not idle:
            continue
        device = idle[0]
        busy.add(device.device_id)
        command_id = f"{tag}-{o.model_id}-{device.device_id}"[:64]
        out.append(
            (
                device.device_id,
                BenchCommand(
                    command_id=command_id,
                    model_ids=[o.model_id],
                    refine=True,
                    max_questions=QUESTIONS_PER_PAIR,
                ),
            )
        )
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
