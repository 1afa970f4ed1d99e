"""Choice scoring on the tiny model: sums, picks, bounds, and a chat still works afterwards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agent.inference.choice_scoring import ChoiceLogprob, ChoiceScores, common_prefix, log_softmax
from agent.inference.runtime import ModelRuntime
from agent.inference.types import EmptyPrompt, PromptTooLong


def test_common_prefix_and_log_softmax() -> None:
    assert common_prefix([1, 2, 3], [1, 2, 4, 5]) == 2
    assert common_prefix([], [1]) == 0
    rows = log_softmax(np.array([[0.0, 0.0], [1000.0, 0.0]], dtype=np.float32))
    assert np.allclose(np.exp(rows).sum(axis=1), 1.0)
    assert rows[0, 0] == pytest.approx(np.log(0.5))


def test_acc_picks_the_highest_sum_and_acc_norm_the_highest_per_byte() -> None:
    scores = ChoiceScores([ChoiceLogprob(-4.0, 2), ChoiceLogprob(-6.0, 3)], tokens_evaluated=9)
    assert scores.chosen() == 0
    assert scores.chosen_norm([" ab", " abcdefghij"]) == 1  # -4/3 bytes < -6/11 bytes


@pytest.fixture
def runtime(tiny_gguf: Path) -> ModelRuntime:
    loaded = ModelRuntime(tiny_gguf, threads=1, n_ctx=128)
    yield loaded
    loaded.close()


def test_every_choice_gets_a_finite_sum_over_its_own_tokens(runtime: ModelRuntime) -> None:
    scores = runtime.score_choices("Question: 2 + 2\nAnswer:", [" 4", " five", " 22 or so"])
    assert len(scores.choices) == 3
    assert all(np.isfinite(c.logprob) and c.logprob < 0 and c.tokens >= 1 for c in scores.choices)
    longest = scores.choices[2]
    assert longest.tokens > scores.choices[0].tokens
    again = runtime.score_choices("Question: 2 + 2\nAnswer:", [" 4", " five", " 22 or so"])
    assert [c.logprob for c in again.choices] == pytest.approx(
        [c.logprob for c in scores.choices], abs=1e-3
    )
    # the shared context is evaluated once and reused: less decoding the second time
    assert again.tokens_evaluated <= scores.tokens_evaluated


def test_scoring_refuses_what_does_not_fit_and_leaves_chat_working(runtime: ModelRuntime) -> None:
    with pytest.raises(PromptTooLong):
        runtime.score_choices("word " * 400, [" a", " b"])
    with pytest.raises(EmptyPrompt):
        runtime.score_choices("  ", [" a", " b"])
    reply = runtime.chat([{"role": "user", "content": "Hi"}], max_tokens=4)
    assert reply.generated_tokens >= 1
