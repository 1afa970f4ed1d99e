"""The batching bench measures what it says: both sides answer every request, and ``--reuse``
serves one at a time with the system prompt kept, as an agent does (tiny real llama.cpp model)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.inference.batch import BatchEngine
from bench.batching import CONCURRENCY, step_cost, throughput, together
from shared.profiles import parse_profile

PROFILE = Path("firmware-config/classes/dev-x86-1core.yaml")


@pytest.mark.parametrize("reuse", [False, True])
def test_one_at_a_time_evaluates_whole_prompts_only_without_reuse(
    tiny_gguf: Path, reuse: bool
) -> None:
    engine = BatchEngine(tiny_gguf, parallel=1, n_ctx=512, prefix_reuse=reuse)
    try:
        _, generations = together(engine, 1, 4, 3)
    finally:
        engine.close()
    assert len(generations) == 3
    first, *later = generations
    assert first.prompt_tokens_evaluated == first.prompt_tokens  # reset before the side starts
    for reply in later:
        if reuse:  # the shared system prompt is found in the cells
            assert reply.prompt_tokens_evaluated < reply.prompt_tokens / 2
        else:
            assert reply.prompt_tokens_evaluated == reply.prompt_tokens


def test_throughput_rows_count_every_request_of_both_sides(tiny_gguf: Path) -> None:
    engine = BatchEngine(tiny_gguf, parallel=max(CONCURRENCY), n_ctx=512)
    single = BatchEngine(tiny_gguf, parallel=1, n_ctx=512)
    try:
        rows = throughput(engine, single, 6, 1, 2)
    finally:
        engine.close()
        single.close()
    assert [row["concurrent"] for row in rows] == list(CONCURRENCY)
    for row in rows:
        assert row["serial_tok_s"] > 0 and row["batched_tok_s"] > 0
        assert str(row["same_text"]).endswith(f"/{2 * row['concurrent']}")
        assert 0 < row["serial_ttft_ms_p50"] <= row["serial_ttft_ms_p95"]


def test_step_cost_measures_steps_of_one_two_and_four(tiny_gguf: Path) -> None:
    profile = parse_profile(PROFILE.read_text(), source=str(PROFILE))
    rows = step_cost(tiny_gguf, profile, steps=3)
    assert [row["sequences"] for row in rows] == list(CONCURRENCY)
    assert all(row["cpu_ms_per_step"] >= 0 and row["wall_ms_per_step"] > 0 for row in rows)
