"""The memory filter counts the KV cells of every parallel sequence (real SmolLM2 metadata)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from controller.planner.filters import class_filter
from controller.planner.scores import _memory
from controller.planner.specs import model_spec_from_gguf
from controller.planner.types import ModelSpec, Option, PlannerSettings
from shared.gguf_info import estimate_memory, read_gguf_info
from shared.profiles import DeviceProfile
from tests.factories.planner import bench_run, option_score

SETTINGS = PlannerSettings()
MB = 1_000_000


def _profile(budget_mb: int, parallel: int | None) -> DeviceProfile:
    return DeviceProfile(
        name="classroom",
        arch="x86_64",
        memory_budget_mb=budget_mb,
        latency_budget_s=60,
        disk_budget_mb=4000,
        threads=1,
        n_ctx=2048,
        parallel=parallel,
        memory_bandwidth_gbs=8,
        compute_gflops=40,
    )


def _filtered(spec: ModelSpec, profile: DeviceProfile) -> tuple[bool, str]:
    score = option_score(
        profile.name,
        spec.model_id,
        "direct",
        psi=2.0,
        p95_s=5,
        memory_mb=spec.memory_estimate_mb[profile.name],
    )
    score = dataclasses.replace(score, memory_measured=False)
    survivors, reasons = class_filter([score], profile, {spec.model_id: spec}, SETTINGS)
    rejection = reasons.get(Option(spec.model_id))
    return bool(survivors), rejection.reason if rejection else ""


def test_memory_filter_rejects_a_parallel_count_that_does_not_fit(smollm2_path: Path) -> None:
    info = read_gguf_info(smollm2_path)
    margin = 1 + SETTINGS.memory_margin_frac
    one = estimate_memory(info, n_ctx=2048).total_mb * margin
    eight = estimate_memory(info, n_ctx=2048, parallel=8).total_mb * margin
    budget = int((one + eight) / 2)  # one sequence fits, eight do not
    eight_profile = _profile(budget, 8)
    spec = model_spec_from_gguf("smollm2", info, [eight_profile])
    fits, reason = _filtered(spec, eight_profile)
    assert not fits
    assert "KV for 8 parallel sequences" in reason and f"budget {budget / 1000:.2f} GB" in reason

    one_profile = _profile(budget, 1)
    assert _filtered(model_spec_from_gguf("smollm2", info, [one_profile]), one_profile)[0]

    auto = _profile(budget, None)  # as many as fit: more than one, fewer than eight
    auto_spec = model_spec_from_gguf("smollm2", info, [auto])
    assert 1 < auto_spec.parallel["classroom"] < 8
    assert _filtered(auto_spec, auto)[0]


def test_measured_memory_adds_the_kv_of_the_other_sequences(smollm2_path: Path) -> None:
    info = read_gguf_info(smollm2_path)
    profile = _profile(2000, 4)
    spec = model_spec_from_gguf("smollm2", info, [profile])
    kv_mb = estimate_memory(info, n_ctx=2048).kv_cache / MB
    run = bench_run("smollm2", "classroom", [], peak_rss_mb=250.0)
    memory_mb, measured = _memory(spec, [run], "classroom")
    assert measured
    assert abs(memory_mb - (250.0 + 3 * kv_mb)) < 1e-6
