"""Planner test data: judge scores that reproduce the seed's Table 3, models, runs, fleets."""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from controller.planner.predict import LatencyEstimate
from controller.planner.scores import OptionScore
from controller.planner.types import BenchRun, ModelSpec, Option
from shared.messages import AnswerLatency, QuestionResult
from shared.profiles import DeviceProfile, parse_profile
from shared.quality import Interval

TABLE3_CSV = Path(__file__).parents[1] / "data" / "seed_table3.csv"
GB = 1_000_000_000
Q4_BYTES_PER_PARAM = 0.5625  # Q4_K_M: 4.5 bits per weight


def table3() -> dict[str, dict[str, tuple[float, float, float]]]:
    """model -> category -> (params in billions, zero-shot %, refined %), from the seed paper."""
    out: dict[str, dict[str, tuple[float, float, float]]] = defaultdict(dict)
    with TABLE3_CSV.open() as handle:
        for row in csv.DictReader(handle):
            out[row["model"]][row["category"]] = (
                float(row["params_billion"]),
                float(row["zero_shot_pct_of_chatgpt"]),
                float(row["refined_pct_of_chatgpt"]),
            )
    return dict(out)


def questions_for(
    pct: dict[str, tuple[float, float]], *, per_category: int = 6, seed: int = 0
) -> list[QuestionResult]:
    """Judge scores whose candidate/reference mean ratio is exactly ``pct`` per category and mode.

    Reference scores vary per question, and the candidate's scores carry
    zero-sum noise, so a per-question shortcut would not reproduce the ratio.
    """
    rng = np.random.default_rng(seed)
    out = []
    for category, modes in sorted(pct.items()):
        ref = rng.uniform(6.0, 8.5, size=per_category)
        noise = rng.uniform(-0.3, 0.3, size=per_category)
        noise -= noise.mean()
        for refined, p in zip((False, True), modes, strict=True):
            cand = ref.mean() * p / 100 + noise * (p / 100)
            for i in range(per_category):
                out.append(
                    QuestionResult(
                        question_id=f"{category}-{i}",
                        category=category,
                        refined=refined,
                        judge_score=float(np.clip(cand[i], 1, 10)),
                        reference_judge_score=float(ref[i]),
                        e2e_ms=1000.0,
                        generated_tokens=100,
                        prompt_tokens_evaluated=50,
                    )
                )
    return out


def model_spec(
    model_id: str, params_b: float, *, estimates: dict[str, float] | None = None
) -> ModelSpec:
    """A Q4 model of ``params_b`` billion parameters; memory estimate ~ weights + 10 %."""
    weights = int(params_b * 1e9 * Q4_BYTES_PER_PARAM)
    return ModelSpec(
        model_id=model_id,
        parameters=int(params_b * 1e9),
        weights_bytes=weights,
        file_size_bytes=weights + 2_000_000,
        memory_estimate_mb=estimates or {},
    )


def bench_run(
    model_id: str,
    device_class: str,
    questions: list[QuestionResult],
    *,
    peak_rss_mb: float,
    decode_tok_s: float = 10.0,
    prefill_tok_s: float = 50.0,
    answer_tokens: float = 256,
    prompt_tokens: float = 128,
) -> BenchRun:
    """A run whose latencies follow from its rates (p95 = 1.1 x p50)."""
    p50 = 1000 * (prompt_tokens / prefill_tok_s + answer_tokens / decode_tok_s)
    lat = AnswerLatency(
        ttft_ms_p50=100,
        ttft_ms_p95=120,
        e2e_ms_p50=p50,
        e2e_ms_p95=1.1 * p50,
        generated_tokens_mean=answer_tokens,
        n=5,
    )
    refined = AnswerLatency(
        ttft_ms_p50=100,
        ttft_ms_p95=120,
        e2e_ms_p50=2.6 * p50,
        e2e_ms_p95=2.9 * p50,
        generated_tokens_mean=answer_tokens,
        n=5,
    )
    return BenchRun(
        model_id=model_id,
        device_class=device_class,
        peak_rss_mb=peak_rss_mb,
        prefill_tok_s=prefill_tok_s,
        decode_tok_s=decode_tok_s,
        zero_shot=lat,
        refined=refined,
        questions=tuple(questions),
    )


def option_score(
    device_class: str,
    model_id: str,
    strategy: str,
    *,
    psi: float,
    memory_mb: float,
    p95_s: float,
    predicted: bool = False,
) -> OptionScore:
    """An OptionScore built directly (for assignment tests that need exact Psi values)."""
    b = math.log(psi)
    return OptionScore(
        device_class=device_class,
        option=Option(model_id, strategy),
        b=b,
        i=0.0,
        e=0.0,
        c=0.0,
        psi=psi,
        psi_memory=psi,
        b_interval=Interval(b, b, 0.95),
        i_interval=None,
        n_questions=10,
        memory_mb=memory_mb,
        memory_measured=True,
        latency=LatencyEstimate(p50_s=p95_s / 1.2, p95_s=p95_s, predicted=predicted, sigma=0.0),
        quality_pooled=False,
    )


CLASSES_DIR = Path(__file__).parents[2] / "firmware-config" / "classes"


def load_profiles() -> dict[str, DeviceProfile]:
    """Every device-class profile in firmware-config/classes."""
    return {
        p.name: p
        for p in (parse_profile(f.read_text(), source=str(f)) for f in CLASSES_DIR.glob("*.yaml"))
    }
