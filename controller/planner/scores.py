"""PeRFICS scores per (model, device class, strategy) from benchmark runs, and the leaderboards.

Terms as PERFICS.md sections 3 and 6 define them (edgefleet's own reading of
the seed paper): ``B`` the model's ``direct`` quality as a fraction of the
reference, ``I`` the strategy's paired gain over ``direct`` on the same items
(0 for ``direct``), ``E`` operator merit, ``C`` the strategy's measured
standard answer's device time over the class's latency budget (p50, so the
score reflects the typical answer; the latency filter uses p95). The
hardware-independent view uses ``C`` = peak memory in GB instead.

Quality is a property of the model file, not the hardware, so a pair that
was never benchmarked borrows the model's questions from the other classes
(``quality_pooled``); speed is not, so its latency is predicted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from controller.planner.predict import (
    ClassCalibration,
    LatencyEstimate,
    calibrate,
    measured_latency,
    predicted_latency,
)
from controller.planner.types import BenchRun, ModelSpec, Option, PlannerSettings
from shared.perfics import latency_cost, memory_cost, perfics_score
from shared.profiles import DeviceProfile
from shared.quality import (
    Interval,
    QualityEstimate,
    baseline_quality,
    improvement_estimate,
    strategies_in,
)
from shared.strategies import DIRECT

MB = 1_000_000


@dataclass(frozen=True)
class OptionScore:
    """Everything the planner and the leaderboard know about one option on one class."""

    device_class: str
    option: Option
    b: float
    i: float
    e: float
    c: float
    psi: float
    psi_memory: float
    b_interval: Interval
    i_interval: Interval | None
    n_questions: int
    memory_mb: float | None
    memory_measured: bool
    latency: LatencyEstimate
    quality_pooled: bool
    suites: tuple[str, ...] = ()

    @property
    def predicted(self) -> bool:
        """Whether the cost term rests on a predicted rather than a measured latency."""
        return self.latency.predicted


@dataclass(frozen=True)
class Quality:
    """B, and I per strategy that was scored on the same items, for one model."""

    b: QualityEstimate
    gains: Mapping[str, QualityEstimate]
    pooled: bool
    suites: tuple[str, ...] = ()

    def options(self) -> list[tuple[str, QualityEstimate | None]]:
        """``direct`` (no gain) first, then each measured strategy with its gain."""
        return [(DIRECT.name, None), *sorted(self.gains.items())]


def model_quality(
    runs: Sequence[BenchRun], settings: PlannerSettings, *, pooled: bool
) -> Quality | None:
    """B and each strategy's I with bootstrap intervals; None when no direct item was scored."""
    questions = [q for r in runs for q in r.questions]
    kwargs = {
        "confidence": settings.confidence,
        "resamples": settings.bootstrap_resamples,
        "seed": settings.seed,
    }
    b = baseline_quality(questions, **kwargs)  # type: ignore[arg-type]
    if b is None:
        return None
    suites = tuple(sorted({r.suite for r in runs if r.suite and r.questions}))
    gains = {
        strategy: gain
        for strategy in strategies_in(questions)
        if (gain := improvement_estimate(questions, strategy=strategy, **kwargs))  # type: ignore[arg-type]
    }
    return Quality(b=b, gains=gains, pooled=pooled, suites=suites)


class _Runs:
    """Bench runs indexed by pair and by model, with pooled quality computed once per model."""

    def __init__(self, runs: Sequence[BenchRun], settings: PlannerSettings) -> None:
        self.by_pair: dict[tuple[str, str], list[BenchRun]] = defaultdict(list)
        self.by_model: dict[str, list[BenchRun]] = defaultdict(list)
        self.by_class: dict[str, list[BenchRun]] = defaultdict(list)
        for run in runs:
            self.by_pair[(run.model_id, run.device_class)].append(run)
            self.by_model[run.model_id].append(run)
            self.by_class[run.device_class].append(run)
        self.settings = settings
        self._pooled: dict[str, Quality | None] = {}

    def quality(self, model_id: str, device_class: str) -> Quality | None:
        own = self.by_pair.get((model_id, device_class), [])
        measured = model_quality(own, self.settings, pooled=False) if own else None
        if measured is not None:
            return measured  # unjudged own questions (no reference) fall through to the pool
        if model_id not in self._pooled:
            pooled = self.by_model.get(model_id, [])
            self._pooled[model_id] = model_quality(pooled, self.settings, pooled=True)
        return self._pooled[model_id]


def _memory(spec: ModelSpec, runs: list[BenchRun], device_class: str) -> tuple[float | None, bool]:
    """Measured peak RSS (one sequence) plus the other parallel ones' KV, else the estimate."""
    if runs:
        extra = spec.parallel.get(device_class, 1) - 1
        kv = spec.kv_mb_per_sequence.get(device_class, 0.0)
        return max(r.peak_rss_mb for r in runs) + extra * kv, True
    return spec.memory_estimate_mb.get(device_class), False


def _latency(
    spec: ModelSpec,
    profile: DeviceProfile,
    cal: ClassCalibration,
    runs: list[BenchRun],
    settings: PlannerSettings,
    strategy: str,
) -> LatencyEstimate:
    for run in reversed(runs):  # the latest run that timed this strategy wins
        est = measured_latency(run, spec, profile, cal, settings, strategy=strategy)
        if est is not None:
            return est
    return predicted_latency(spec, profile, cal, settings, strategy=strategy)


def _option_scores(
    spec: ModelSpec,
    profile: DeviceProfile,
    cal: ClassCalibration,
    index: _Runs,
    settings: PlannerSettings,
) -> list[OptionScore]:
    quality = index.quality(spec.model_id, profile.name)
    if quality is None:
        return []
    runs = index.by_pair.get((spec.model_id, profile.name), [])
    memory_mb, measured = _memory(spec, runs, profile.name)
    out = []
    for strategy, gain in quality.options():
        lat = _latency(spec, profile, cal, runs, settings, strategy)
        i = gain.value if gain else 0.0
        c = latency_cost(lat.p50_s, profile.latency_budget_s)
        w = settings.weights
        out.append(
            OptionScore(
                device_class=profile.name,
                option=Option(spec.model_id, strategy),
                b=quality.b.value,
                i=i,
                e=spec.extrinsic,
                c=c,
                psi=perfics_score(quality.b.value, i, spec.extrinsic, c, w),
                psi_memory=perfics_score(
                    quality.b.value, i, spec.extrinsic, memory_cost((memory_mb or 0) * MB), w
                ),
                b_interval=quality.b.interval,
                i_interval=gain.interval if gain else None,
                n_questions=quality.b.n_questions,
                memory_mb=memory_mb,
                memory_measured=measured,
                latency=lat,
                quality_pooled=quality.pooled,
                suites=quality.suites,
            )
        )
    return out


def compute_scores(
    profiles: Mapping[str, DeviceProfile],
    models: Mapping[str, ModelSpec],
    runs: Sequence[BenchRun],
    settings: PlannerSettings | None = None,
) -> dict[str, list[OptionScore]]:
    """Scores of every scoreable option per class, best first (ties: model id, then strategy).

    A model with no judged question anywhere has no score: profiling picks it up.
    """
    settings = settings or PlannerSettings()
    index = _Runs(runs, settings)
    out: dict[str, list[OptionScore]] = {}
    for name in sorted(profiles):
        profile = profiles[name]
        cal = calibrate(profile, index.by_class.get(name, []), models, settings)
        scores = [
            s
            for model_id in sorted(models)
            for s in _option_scores(models[model_id], profile, cal, index, settings)
        ]
        out[name] = sorted(scores, key=rank_key)
    return out


def rank_key(score: OptionScore) -> tuple[float, str, bool, str]:
    """Best Psi first; equal Psi: model id, then ``direct`` first, then by name (deterministic)."""
    return (-score.psi, score.option.model_id, score.option.refine, score.option.strategy)


@dataclass(frozen=True)
class HardwareIndependentRow:
    """A leaderboard row of the 'which model should I buy hardware for' view."""

    option: Option
    b: float
    i: float
    memory_gb: float
    psi_memory: float


def hardware_independent_view(
    scores: Mapping[str, list[OptionScore]],
) -> list[HardwareIndependentRow]:
    """Per option: the largest footprint over classes, Psi with C = memory GB, best first."""
    worst: dict[Option, OptionScore] = {}
    for class_scores in scores.values():
        for s in class_scores:
            prev = worst.get(s.option)
            if prev is None or (s.memory_mb or 0) > (prev.memory_mb or 0):
                worst[s.option] = s
    rows = [
        HardwareIndependentRow(o, s.b, s.i, (s.memory_mb or 0) / 1000, s.psi_memory)
        for o, s in worst.items()
    ]
    return sorted(
        rows, key=lambda r: (-r.psi_memory, r.option.model_id, r.option.refine, r.option.strategy)
    )
