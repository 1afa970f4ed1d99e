"""Test-time strategies on the real SmolLM2-135M: stage structure, KV reuse, vote counting."""

from __future__ import annotations

import pytest

from agent.inference.refine import StageLimits
from agent.inference.runtime import EmptyPrompt, ModelRuntime
from agent.inference.strategies import answer_key, majority, run
from shared.strategies import Strategy
from shared.suites.answers import Match

QUESTION = "Tom has 3 apples and buys 4 more. How many apples does he have now?"
LIMITS = StageLimits(answer_tokens=48, critique_tokens=32, refine_tokens=48)

pytestmark = pytest.mark.slow


def test_direct_is_one_answer_stage(smollm2_runtime: ModelRuntime) -> None:
    result = run(smollm2_runtime, QUESTION, Strategy.parse("direct"), limits=LIMITS)
    assert [s.name for s in result.stages] == ["answer"]
    assert result.answer == result.initial and result.answer
    assert result.generated_tokens == result.stages[0].generation.generated_tokens


def test_refine_k_grows_one_conversation_and_reuses_its_kv_cache(
    smollm2_runtime: ModelRuntime,
) -> None:
    smollm2_runtime.reset()
    result = run(smollm2_runtime, QUESTION, Strategy.parse("refine:2"), limits=LIMITS)
    assert [s.name for s in result.stages] == ["answer", "critique", "refine", "critique", "refine"]
    for before, stage in zip(result.stages, result.stages[1:], strict=False):
        # only the previous reply and the new instruction are evaluated, never the old prompt
        generation = stage.generation
        assert generation.prompt_tokens_evaluated <= (
            generation.prompt_tokens - before.generation.prompt_tokens
        )
    last = result.stages[-1].generation
    assert result.prompt_tokens_evaluated <= 1.1 * last.prompt_tokens
    assert result.kv_saved_tokens == result.naive_prompt_tokens - result.prompt_tokens_evaluated
    assert result.kv_saved_tokens > result.prompt_tokens_evaluated


def test_verify_refine_rewrites_only_after_an_error_verdict(smollm2_runtime: ModelRuntime) -> None:
    strategy = Strategy.parse("verify-refine")
    questions = [QUESTION, "Name the capital of France.", "What is 12 times 12?"]
    for question in questions:
        result = run(smollm2_runtime, question, strategy, limits=LIMITS)
        names = [s.name for s in result.stages]
        verdict = result.stages[1].generation.text
        flagged = verdict.lstrip(" *'\"").lower().startswith("error")
        assert names == (["answer", "verify", "refine"] if flagged else ["answer", "verify"])
        assert result.flagged is flagged and result.confidence == (0.0 if flagged else 1.0)
        if not flagged:
            assert result.answer == result.initial
        answer_stage, verify = result.stages[0].generation, result.stages[1].generation
        assert verify.prompt_tokens_evaluated <= verify.prompt_tokens - answer_stage.prompt_tokens


def test_vote_samples_share_the_prompt_prefill_and_count_final_answers(
    smollm2_runtime: ModelRuntime,
) -> None:
    smollm2_runtime.reset()
    result = run(
        smollm2_runtime, QUESTION, Strategy.parse("vote:4"), limits=LIMITS, match=Match.NUMBER
    )
    samples = [s.generation for s in result.stages]
    assert [s.name for s in result.stages] == ["sample"] * 4
    prompt = samples[0].prompt_tokens
    assert samples[0].prompt_tokens_evaluated == prompt
    assert all(s.prompt_tokens == prompt and s.prompt_tokens_evaluated <= 2 for s in samples[1:])
    assert result.kv_saved_tokens >= 3 * (prompt - 2)
    texts = [s.text.strip() for s in samples]
    assert len(set(texts)) > 1, "samples at temperature 0.7 must differ"
    keys = [answer_key(text, Match.NUMBER) for text in texts]
    assert sum(result.votes.values()) == sum(1 for k in keys if k is not None)
    if result.votes:
        top = max(result.votes.values())
        assert result.votes[str(answer_key(result.answer, Match.NUMBER))] == top
    assert result.confidence == max(result.votes.values(), default=0) / 4


def test_majority_over_exact_answers_with_a_known_winner() -> None:
    samples = ["He has 7 apples.", "3 + 4 = 8", "The answer is 7", "#### 8", "so 7"]
    served, votes = majority(samples, Match.NUMBER)
    assert served == "He has 7 apples." and votes == {"7": 3, "8": 2}
    letters = ["(B) because", "I think C", "Answer: B", "no idea"]
    assert majority(letters, Match.LETTER) == ("(B) because", {"B": 2})


def test_majority_ties_go_to_the_first_sampled_and_nothing_comparable_serves_the_first() -> None:
    assert majority(["it is 8", "it is 7", "7", "8"], Match.NUMBER)[0] == "it is 8"
    assert majority(["no number", "none here"], Match.NUMBER) == ("no number", {})


def test_only_strategies_that_check_their_answer_report_a_confidence(
    smollm2_runtime: ModelRuntime,
) -> None:
    direct = run(smollm2_runtime, QUESTION, Strategy.parse("direct"), limits=LIMITS)
    assert direct.confidence is None and direct.flagged is None


def test_an_empty_question_is_refused(smollm2_runtime: ModelRuntime) -> None:
    with pytest.raises(EmptyPrompt):
        run(smollm2_runtime, "  ", Strategy.parse("vote:2"))
