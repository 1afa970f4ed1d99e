"""Latency of the class's standard answer: measured when a pair was benchmarked, else predicted.

Prediction (edgefleet's model, after llama.cpp's behaviour on CPUs): decoding
is memory-bound, so decode tok/s ~ effective bandwidth / bytes read per token
(the weights); prefill is compute-bound, tok/s ~ compute rate / (2 x params).
Both rates are calibrated per device class from its measured runs (geometric
mean of the implied bandwidths and compute rates), falling back to the
profile's nominal values with a wide uncertainty. A predicted latency carries
``predicted=True`` and a log-normal sigma, and filters use its upper bound:
it is never treated as a measurement.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from controller.planner.types import BenchRun, ModelSpec, PlannerSettings
from shared.profiles import DeviceProfile
from shared.served_latency import served_latency_ms
from shared.strategies import DIRECT, Strategy

CALIBRATED_MIN_SIGMA = 0.10
"""Even many agreeing runs leave model-to-model variation in effective bandwidth."""


@dataclass(frozen=True)
class ClassCalibration:
    """Effective rates of one device class, with the log-sd of their spread."""

    bandwidth_gbs: float
    compute_gflops: float
    sigma: float
    p95_over_p50: float
    n_runs: int


@dataclass(frozen=True)
class LatencyEstimate:
    """Seconds for the standard answer: typical, p95, and the bound filters use."""

    p50_s: float
    p95_s: float
    predicted: bool
    sigma: float = 0.0

    def upper_s(self, z: float) -> float:
        """p95, widened by the prediction's uncertainty when predicted."""
        return self.p95_s * math.exp(z * self.sigma) if self.predicted else self.p95_s


def _geomean_sigma(values: list[float]) -> tuple[float, float]:
    logs = [math.log(v) for v in values]
    mean = sum(logs) / len(logs)
    if len(logs) < 2:
        return math.exp(mean), 0.25
    var = sum((x - mean) ** 2 for x in logs) / (len(logs) - 1)
    return math.exp(mean), max(CALIBRATED_MIN_SIGMA, math.sqrt(var))


def calibrate(
    profile: DeviceProfile,
    runs: Iterable[BenchRun],
    models: Mapping[str, ModelSpec],
    settings: PlannerSettings,
) -> ClassCalibration:
    """Effective bandwidth and compute of a class from its uncontended measured runs."""
    bws, flops, ratios = [], [], []
    for run in runs:
        spec = models.get(run.model_id)
        if run.device_class != profile.name or run.contended or spec is None:
            continue
        if run.decode_tok_s:
            bws.append(run.decode_tok_s * spec.weights_bytes / 1e9)
        if run.prefill_tok_s:
            flops.append(run.prefill_tok_s * 2 * spec.parameters / 1e9)
        if run.zero_shot and run.zero_shot.e2e_ms_p50 > 0:
            ratios.append(run.zero_shot.e2e_ms_p95 / run.zero_shot.e2e_ms_p50)
    if not bws:
        return ClassCalibration(
            profile.memory_bandwidth_gbs,
            profile.compute_gflops,
            settings.nominal_sigma,
            settings.default_p95_over_p50,
            0,
        )
    bw, sigma = _geomean_sigma(bws)
    gflops = (
        _geomean_sigma(flops)[0]
        if flops
        else profile.compute_gflops * bw / (profile.memory_bandwidth_gbs)
    )
    ratio = max(1.0, sorted(ratios)[len(ratios) // 2]) if ratios else settings.default_p95_over_p50
    return ClassCalibration(bw, gflops, sigma, ratio, len(bws))


def standard_tokens(
    profile: DeviceProfile, settings: PlannerSettings, *, strategy: str = DIRECT.name
) -> tuple[float, float]:
    """(prefill, decode) tokens of the standard answer served with ``strategy``.

    Refinement stages share one KV cache, so each later stage prefills only its
    instruction and decodes a critique and a rewrite; ``verify-refine`` is
    costed as one full round (its bound: the rewrite may not run). ``vote:k``
    prefills the prompt once (the samples share it) and decodes k answers.
    """
    prompt, answer = profile.standard_prompt_tokens, profile.standard_answer_tokens
    chosen = Strategy.parse(strategy)
    if chosen.kind == "vote":
        return float(prompt), float(answer * chosen.k)
    rounds = {"direct": 0, "verify-refine": 1}.get(chosen.kind, chosen.k)
    prefill = prompt + 2 * rounds * settings.refine_instruction_tokens
    decode = answer * (1 + rounds * (1 + settings.critique_tokens_frac))
    return float(prefill), float(decode)


def predicted_rates(spec: ModelSpec, cal: ClassCalibration) -> tuple[float, float]:
    """(prefill tok/s, decode tok/s) predicted for a model on a calibrated class."""
    decode = cal.bandwidth_gbs * 1e9 / max(spec.weights_bytes, 1)
    prefill = cal.compute_gflops * 1e9 / max(2 * spec.parameters, 1)
    return prefill, decode


def _time(tokens: tuple[float, float], prefill_tok_s: float, decode_tok_s: float) -> float:
    return tokens[0] / prefill_tok_s + tokens[1] / decode_tok_s


def measured_latency(
    run: BenchRun,
    spec: ModelSpec,
    profile: DeviceProfile,
    cal: ClassCalibration,
    settings: PlannerSettings,
    *,
    strategy: str = DIRECT.name,
) -> LatencyEstimate | None:
    """Latency from a run's measured p50/p95, rescaled to the class's standard answer length."""
    answer = served_latency_ms(
        strategy, zero_shot=run.zero_shot, refined=run.refined, questions=run.questions
    )
    if answer is None or run.zero_shot is None:
        return None
    prefill, decode = predicted_rates(spec, cal)
    prefill = run.prefill_tok_s or prefill
    decode = run.decode_tok_s or decode
    bench_tokens = (float(profile.standard_prompt_tokens), run.zero_shot.generated_tokens_mean)
    std_tokens = standard_tokens(profile, settings)
    scale = _time(std_tokens, prefill, decode) / max(_time(bench_tokens, prefill, decode), 1e-9)
    return LatencyEstimate(
        p50_s=answer[0] / 1000 * scale, p95_s=answer[1] / 1000 * scale, predicted=False
    )


def predicted_latency(
    spec: ModelSpec,
    profile: DeviceProfile,
    cal: ClassCalibration,
    settings: PlannerSettings,
    *,
    strategy: str = DIRECT.name,
) -> LatencyEstimate:
    """Latency from the calibrated rates; marked predicted, with the class's sigma."""
    prefill, decode = predicted_rates(spec, cal)
    p50 = _time(standard_tokens(profile, settings, strategy=strategy), prefill, decode)
    return LatencyEstimate(p50_s=p50, p95_s=p50 * cal.p95_over_p50, predicted=True, sigma=cal.sigma)
