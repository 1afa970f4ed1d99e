"""The chat API over the real SmolLM2-135M-Instruct (slow: a real 4-bit model answers)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from agent.chat.metrics import ServingMetrics
from agent.models.serving import ModelHost
from tests.agent.daemon_support import chat_server, load_serving

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]


@pytest.fixture(scope="module")
def smollm2_host(smollm2_path: Path):
    host = ModelHost()
    host.swap(load_serving(smollm2_path, model_id="smollm2"))
    yield host
    host.close()


@pytest.mark.parametrize("refine", [False, True])
def test_smollm2_answers_through_the_chat_api(smollm2_host: ModelHost, refine: bool) -> None:
    with chat_server(smollm2_host, ServingMetrics()) as server:
        reply = httpx.post(
            f"{server.url}/v1/chat/completions",
            json={"model": "smollm2", "messages": QUESTION, "max_tokens": 48, "refine": refine},
            timeout=240,
        )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert "Paris" in body["choices"][0]["message"]["content"]
    assert body["edgefleet"]["stages"] == (3 if refine else 1)


def test_smollm2_continues_a_partial_answer_where_it_was_cut(smollm2_host: ModelHost) -> None:
    """At temperature 0 the answer cut after a few words and continued is the answer whole.

    The cut falls before a space: the prefix then re-tokenises into the tokens the model
    generated (its word tokens carry their leading space), so the continuation has the
    same context the uncut answer had. A new assistant turn would restart the answer.
    """
    body = {"model": "smollm2", "max_tokens": 24, "temperature": 0}
    with chat_server(smollm2_host, ServingMetrics()) as server:
        url = f"{server.url}/v1/chat/completions"
        whole = httpx.post(url, json={**body, "messages": QUESTION}, timeout=240)
        assert whole.status_code == 200, whole.text
        answer = whole.json()["choices"][0]["message"]["content"]
        prefix = " ".join(answer.split(" ")[:3])
        partial = [*QUESTION, {"role": "assistant", "content": prefix}]
        payload = {**body, "messages": partial, "continue_final_message": True}
        continued = httpx.post(url, json=payload, timeout=240)
    assert continued.status_code == 200, continued.text
    rest = continued.json()["choices"][0]["message"]["content"]
    assert len(prefix) < len(answer) and rest[:1] == " "  # it goes on mid-sentence
    assert "assistant" not in rest and "<|im_" not in rest
    assert (prefix + rest).startswith(answer)
