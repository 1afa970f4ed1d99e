"""Self-refinement: three stages in one growing conversation, reusing the KV cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.inference.refine import StageLimits, answer
from agent.inference.runtime import EmptyPrompt, ModelRuntime

QUESTION = "what is the answer to the question"


def _final_conversation_tokens(result) -> int:  # type: ignore[no-untyped-def]
    last = result.stages[-1]
    return last.prompt_tokens + last.generated_tokens


def test_refinement_produces_answer_critique_and_refined_answer(
    tiny_runtime: ModelRuntime,
) -> None:
    streamed: dict[str, str] = {}

    def on_token(stage: str, text: str) -> None:
        streamed[stage] = streamed.get(stage, "") + text

    result = answer(tiny_runtime, QUESTION, limits=StageLimits(24, 24, 24), on_token=on_token)
    assert len(result.stages) == 3
    assert result.initial and len(result.critiques) == 1 and result.critiques[0]
    assert result.refinements and result.answer == result.refinements[0]
    assert result.refined and not result.fell_back
    assert set(streamed) == {"answer", "critique", "refine"}
    assert streamed["answer"].strip() == result.initial


def test_refinement_evaluates_only_new_tokens(tiny_runtime: ModelRuntime) -> None:
    result = answer(tiny_runtime, QUESTION, limits=StageLimits(32, 32, 32))
    distinct = _final_conversation_tokens(result)
    assert result.prompt_tokens_evaluated <= 1.1 * distinct
    critique, refine = result.stages[1], result.stages[2]
    assert critique.prompt_tokens_evaluated < critique.prompt_tokens
    assert refine.prompt_tokens_evaluated < refine.prompt_tokens
    # the sum is what the stages report, not a separate guess
    assert result.prompt_tokens_evaluated == sum(s.prompt_tokens_evaluated for s in result.stages)


def test_two_rounds_keep_growing_the_same_conversation(tiny_runtime: ModelRuntime) -> None:
    result = answer(tiny_runtime, QUESTION, rounds=2, limits=StageLimits(16, 16, 16))
    assert len(result.stages) == 5 and len(result.critiques) == 2
    assert result.prompt_tokens_evaluated <= 1.1 * _final_conversation_tokens(result)


def test_no_refine_gives_the_zero_shot_answer_only(tiny_runtime: ModelRuntime) -> None:
    result = answer(tiny_runtime, QUESTION, refine=False, limits=StageLimits(answer_tokens=8))
    assert len(result.stages) == 1
    assert result.answer == result.initial and not result.critiques
    assert not result.refined and not result.fell_back


def test_failed_stage_falls_back_to_the_last_good_answer(tiny_gguf: Path) -> None:
    # a small context: the answer fits, the critique prompt does not
    runtime = ModelRuntime(tiny_gguf, threads=1, n_ctx=256)
    result = answer(runtime, QUESTION, limits=StageLimits(120, 64, 64))
    assert result.fell_back
    assert result.fallback_reason and "critique stage failed" in result.fallback_reason
    assert "context holds 256" in result.fallback_reason
    assert result.answer == result.initial
    # the runtime still serves afterwards
    assert answer(runtime, QUESTION, refine=False, limits=StageLimits(8)).initial
    runtime.close()


def test_empty_question_is_refused(tiny_runtime: ModelRuntime) -> None:
    with pytest.raises(EmptyPrompt):
        answer(tiny_runtime, "  \n")


@pytest.mark.slow
def test_smollm2_refinement_reuses_the_kv_cache(smollm2_runtime: ModelRuntime) -> None:
    result = answer(
        smollm2_runtime,
        "Name three primary colours.",
        limits=StageLimits(answer_tokens=64, critique_tokens=48, refine_tokens=64),
    )
    assert result.initial and result.critiques[0] and result.answer
    assert not result.fell_back
    assert smollm2_runtime.instruction_tuned
    assert result.prompt_tokens_evaluated <= 1.1 * _final_conversation_tokens(result)
    assert result.stages[2].prompt_tokens_evaluated < result.stages[2].prompt_tokens / 2
