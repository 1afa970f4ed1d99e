"""Simulated fleets for bench/planner.py: Table-3 models, firmware-config classes.

Quality: the five Table-3 models keep their published per-category figures;
smaller models (the only ones a Pi can hold) get per-category figures from a
least-squares line of each Table-3 column against log10(parameters),
clipped to [5, 120] %. That extrapolation is ours and is labelled as such.
Shapes (layers, width, heads) are the public ones of comparable open models,
so memory comes from shared.gguf_info's estimate. Speed truth: each class's
real effective bandwidth is its nominal value times a hidden log-normal
factor, each model's efficiency another; the planner sees noisy
measurements of some pairs and must predict the rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from controller.planner.specs import model_spec_from_gguf
from controller.planner.types import BenchRun, ModelSpec
from shared.gguf_info import GgufInfo
from shared.messages import AnswerLatency, QuestionResult
from shared.profiles import DeviceProfile
from tests.factories.planner import load_profiles, questions_for, table3

BPW_Q4_K_M = 4.85
# name: (params in billions, layers, embedding, heads, kv heads, vocab)
SHAPES: dict[str, tuple[float, int, int, int, int, int]] = {
    "extrap-0.135b": (0.135, 30, 576, 9, 3, 49152),
    "extrap-0.27b": (0.27, 18, 640, 4, 1, 262144),
    "extrap-0.5b": (0.5, 24, 896, 14, 2, 151936),
    "extrap-1.2b": (1.24, 16, 2048, 32, 8, 128256),
    "extrap-1.5b": (1.54, 28, 1536, 12, 2, 151936),
    "extrap-3b": (3.2, 28, 3072, 24, 8, 128256),
    "Airoboros-7B": (6.7, 32, 4096, 32, 32, 32000),
    "Vicuna-7B": (6.7, 32, 4096, 32, 32, 32000),
    "Vicuna-13B": (13.0, 40, 5120, 40, 40, 32000),
    "GPT4X-Alpasta-30B": (32.5, 60, 6656, 52, 52, 32000),
    "Guanaco-65B": (65.2, 80, 8192, 64, 64, 32000),
}


def gguf_info(
    name: str, params_b: float, layers: int, emb: int, heads: int, kv: int, vocab: int
) -> GgufInfo:
    """A synthetic GgufInfo with a real model's shape at Q4_K_M."""
    tensor_bytes = int(params_b * 1e9 * BPW_Q4_K_M / 8)
    head = emb // heads
    return GgufInfo(
        path=Path(f"{name}.gguf"),
        file_size=tensor_bytes + 4_000_000,
        architecture="llama",
        name=name,
        parameters=int(params_b * 1e9),
        quantization="Q4_K_M",
        context_length=4096,
        layers=layers,
        heads=heads,
        kv_heads=kv,
        embedding=emb,
        vocab_size=vocab,
        key_length=head,
        value_length=head,
        sliding_window=None,
        chat_template="x",
        tensor_bytes=tensor_bytes,
    )


def quality_table() -> dict[str, dict[str, tuple[float, float]]]:
    """Per model and category: (zero-shot %, refined %); extrapolated below 7B."""
    t3 = table3()
    out = {m: {k: (v[1], v[2]) for k, v in cats.items()} for m, cats in t3.items()}
    categories = sorted(next(iter(t3.values())))
    x = np.log10([t3[m][categories[0]][0] for m in sorted(t3)])
    fits = {}
    for k in categories:
        for col in (1, 2):
            y = [t3[m][k][col] for m in sorted(t3)]
            fits[(k, col)] = np.polyfit(x, y, 1)
    for name, (params, *_rest) in SHAPES.items():
        if name in out:
            continue
        lx = math.log10(params)
        out[name] = {
            k: tuple(float(np.clip(np.polyval(fits[(k, c)], lx), 5, 120)) for c in (1, 2))
            for k in categories
        }
    return out


@dataclass
class SimWorld:
    """What the planner is given, and the hidden truth used to grade plans."""

    profiles: dict[str, DeviceProfile]
    models: dict[str, ModelSpec]
    runs: list[BenchRun]
    quality: dict[str, dict[str, tuple[float, float]]]
    true_decode: dict[tuple[str, str], float]
    true_prefill: dict[tuple[str, str], float]


def build_world(seed: int = 0, measured_share: float = 0.3) -> SimWorld:
    """The firmware-config classes, the Table-3-derived models, noisy runs of some pairs."""
    rng = np.random.default_rng(seed)
    profiles = load_profiles()
    models = {
        name: model_spec_from_gguf(name, gguf_info(name, *shape), profiles.values())
        for name, shape in SHAPES.items()
    }
    quality = quality_table()
    class_factor = {c: float(rng.lognormal(0, 0.25)) for c in profiles}
    model_factor = {m: float(rng.lognormal(0, 0.1)) for m in models}
    true_decode, true_prefill, runs = {}, {}, []
    for c, p in sorted(profiles.items()):
        for m, spec in sorted(models.items()):
            f = class_factor[c] * model_factor[m]
            true_decode[(m, c)] = p.memory_bandwidth_gbs * 1e9 * f / spec.weights_bytes
            true_prefill[(m, c)] = p.compute_gflops * 1e9 * f / (2 * spec.parameters)
            if rng.random() < measured_share:
                runs.append(_run(rng, m, c, p, spec, quality[m], true_decode, true_prefill))
    # Models never run on a fleet class are judged once on the controller's side.
    for m in sorted(models):
        if not any(r.model_id == m for r in runs):
            qs = tuple(_questions(quality[m], rng))
            runs.append(BenchRun(m, "judge-server", peak_rss_mb=1.0, questions=qs))
    return SimWorld(profiles, models, runs, quality, true_decode, true_prefill)


def _questions(
    pct: dict[str, tuple[float, float]], rng: np.random.Generator
) -> list[QuestionResult]:
    return questions_for(pct, per_category=5, seed=int(rng.integers(1 << 30)))


def _run(rng, m, c, p, spec, pct, true_decode, true_prefill) -> BenchRun:
    decode = true_decode[(m, c)] * float(rng.lognormal(0, 0.05))
    prefill = true_prefill[(m, c)] * float(rng.lognormal(0, 0.05))
    p50 = 1000 * (p.standard_prompt_tokens / prefill + p.standard_answer_tokens / decode)
    lat = AnswerLatency(
        ttft_ms_p50=1,
        ttft_ms_p95=1,
        e2e_ms_p50=p50,
        e2e_ms_p95=1.15 * p50,
        generated_tokens_mean=p.standard_answer_tokens,
        n=5,
    )
    ref = AnswerLatency(
        ttft_ms_p50=1,
        ttft_ms_p95=1,
        e2e_ms_p50=2.6 * p50,
        e2e_ms_p95=2.6 * 1.15 * p50,
        generated_tokens_mean=p.standard_answer_tokens,
        n=5,
    )
    rss = spec.memory_estimate_mb[c] * float(rng.uniform(0.9, 1.05))
    return BenchRun(
        m,
        c,
        peak_rss_mb=rss,
        prefill_tok_s=prefill,
        decode_tok_s=decode,
        zero_shot=lat,
        refined=ref,
        questions=tuple(_questions(pct, rng)),
    )
