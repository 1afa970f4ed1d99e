"""Judge parsing and grading with a real (tiny) model: unparsable ratings are missing, not 0."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from agent.bench.judge import Judge, grading_prompt, parse_rating
from agent.inference.runtime import ModelRuntime


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Clear and correct.\nRating: [[8]]", 8.0),
        ("first [[3]] then on reflection [[ 7 ]]", 7.0),
        ("Rating: [[6.5]]", 6.5),
        ("Rating: 9/10", 9.0),
        ("rating = 4", 4.0),
        ("Rating: [[0]]", None),
        ("Rating: [[11]]", None),
        ("I liked it a lot", None),
        ("", None),
    ],
)
def test_parse_rating(reply: str, expected: float | None) -> None:
    assert parse_rating(reply) == expected


def test_grading_prompt_includes_the_reference_only_when_given() -> None:
    plain = grading_prompt("2+2?", "4")
    guided = grading_prompt("2+2?", "4", reference="4, by counting")
    assert "Reference Answer" not in plain
    assert "[The Start of the Reference Answer]\n4, by counting" in guided
    assert "Rating: [[5]]" in guided


def test_unparsable_judge_reply_is_recorded_as_missing(tiny_gguf: Path) -> None:
    # random weights never write "Rating: [[N]]": the verdict must be missing, not 0
    judge_model = ModelRuntime(tiny_gguf, threads=1, n_ctx=4096)
    verdict = Judge(judge_model, max_tokens=24).grade("what is the answer", "the answer is good")
    assert verdict.score is None
    assert len(verdict.replies) == 2  # asked once more for the rating alone
    assert verdict.replies[0]
    judge_model.close()


def test_judge_error_is_missing_with_the_reason(tiny_gguf: Path) -> None:
    small = ModelRuntime(tiny_gguf, threads=1, n_ctx=256)
    verdict = Judge(small).grade("question " * 50, "answer " * 200)
    assert verdict.score is None and verdict.error and "context" in verdict.error
    small.close()


@pytest.mark.slow
def test_gemma3_judge_gives_parsable_or_missing_ratings(gemma3_path: Path) -> None:
    judge_model = ModelRuntime(gemma3_path, threads=1, n_ctx=2048)
    verdict = Judge(judge_model, max_tokens=64).grade(
        "What is the capital of Japan?", "Tokyo.", reference="Tokyo."
    )
    assert verdict.score is None or 1 <= verdict.score <= 10
    assert verdict.replies
    judge_model.close()


def test_base_model_judge_defaults_to_probability_mode(
    tiny_gguf_factory: Callable[..., Path],
) -> None:
    base = ModelRuntime(tiny_gguf_factory("judge-base", chat_template=None), threads=1, n_ctx=4096)
    judge = Judge(base)
    assert judge.mode == "probability"
    verdict = judge.grade("what is the answer", "the answer is good")
    # random weights put almost no probability on the digits: missing, not a number
    assert verdict.score is None and "digit probability" in verdict.replies[0]
    base.close()


def test_unknown_judge_mode_is_refused(tiny_runtime: ModelRuntime) -> None:
    with pytest.raises(ValueError, match="judge mode"):
        Judge(tiny_runtime, mode="vibes")


def test_next_token_probs_reuse_the_cached_prefix(tiny_runtime: ModelRuntime) -> None:
    prompt = "the answer is good and the question is " * 10
    first = tiny_runtime.next_token_probs(prompt + "what", ["a", "b"])
    evaluated_first = tiny_runtime._evaluated[-1][0]
    second = tiny_runtime.next_token_probs(prompt + "how", ["a", "b"])
    evaluated_second = tiny_runtime._evaluated[-1][0]
    assert 0 <= first["a"] <= 1 and 0 <= second["b"] <= 1
    assert evaluated_second < evaluated_first // 4


@pytest.mark.slow
def test_gemma3_probability_judge_ranks_right_above_wrong(gemma3_path: Path) -> None:
    judge_model = ModelRuntime(gemma3_path, threads=1, n_ctx=2048)
    judge = Judge(judge_model)
    assert judge.mode == "probability"
    right = judge.grade("What is the capital city of Japan?", "Tokyo.", reference="Tokyo.")
    wrong = judge.grade("What is the capital city of Japan?", "Paris.", reference="Tokyo.")
    assert right.score is not None and wrong.score is not None
    assert 1 <= wrong.score < right.score <= 9
    judge_model.close()
