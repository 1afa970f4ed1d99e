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
