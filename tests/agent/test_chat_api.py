"""The local chat API answers OpenAI-shaped requests with the real tiny model."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import httpx
import pytest

from agent.chat.metrics import ServingMetrics
from agent.models.serving import ModelHost
from tests.agent.daemon_support import chat_server, load_serving

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def host(tiny_gguf: Path):
    host = ModelHost(queue_size=1)
    host.swap(load_serving(tiny_gguf))
    yield host
    host.close()


def _post_once(host: ModelHost, metrics: ServingMetrics, payload: dict) -> httpx.Response:
    """One chat completion from a server started for it alone."""
    with chat_server(host, metrics) as server:
        return httpx.post(f"{server.url}/v1/chat/completions", json=payload, timeout=60)


def test_chat_completion_without_refinement_is_openai_shaped(host: ModelHost) -> None:
    metrics = ServingMetrics()
    reply = _post_once(
        host,
        metrics,
        {
            "model": "tiny",
            "messages": [{"role": "user", "content": "what is water"}],
            "max_tokens": 8,
            "temperature": 0,
            "top_p": 1,
        },
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert body["choices"][0]["message"]["content"]
    assert body["usage"]["completion_tokens"] == 8
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["edgefleet"]["refined"] is False
    report = metrics.report("tiny")
    assert report.requests == 1 and report.generated_tokens == 8 and report.refined_requests == 0


def test_chat_completion_with_refinement_runs_three_stages(host: ModelHost) -> None:
    metrics = ServingMetrics()
    reply = _post_once(
        host,
        metrics,
        {
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "what is water"},
            ],
            "max_tokens": 6,
            "refine": True,
        },
    )
    assert reply.status_code == 200, reply.text
    ext = reply.json()["edgefleet"]
    assert ext["refined"] is True and ext["stages"] == 3
    assert reply.json()["usage"]["completion_tokens"] > 6
    assert metrics.report("tiny").refined_requests == 1


def test_a_strategy_named_in_the_request_is_served_and_reported(host: ModelHost) -> None:
    metrics = ServingMetrics()
    question = [{"role": "user", "content": "what is 2 + 2"}]
    body = {"messages": question, "max_tokens": 6, "refine": False, "strategy": "VOTE:3"}
    reply = _post_once(host, metrics, body)
    assert reply.status_code == 200, reply.text
    ext = reply.json()["edgefleet"]
    assert ext["strategy"] == "vote:3" and ext["stages"] == 3  # strategy wins over refine
    assert ext["confidence"] in (0.0, 0.3333, 0.6667, 1.0)  # the majority's share of 3
    verify = _post_once(host, metrics, {**body, "strategy": "verify-refine"}).json()["edgefleet"]
    assert verify["strategy"] == "verify-refine" and verify["stages"] in (2, 3)
    assert verify["confidence"] == (0.0 if verify["stages"] == 3 else 1.0)
    old = _post_once(host, metrics, {"messages": question, "max_tokens": 6, "refine": True})
    assert old.json()["edgefleet"]["strategy"] == "refine:1"
    assert "confidence" not in old.json()["edgefleet"]  # refine does not check its answer


def test_an_unknown_strategy_is_refused_with_the_accepted_forms(host: ModelHost) -> None:
    body = {"messages": [{"role": "user", "content": "hi"}], "strategy": "vote:99"}
    reply = _post_once(host, ServingMetrics(), body)
    assert reply.status_code == 422 and "vote:K needs 2 <= K <= 16" in reply.text


def test_streaming_sends_chunks_then_done(host: ModelHost) -> None:
    with chat_server(host, ServingMetrics()) as server:
        with httpx.stream(
            "POST",
            f"{server.url}/v1/chat/completions",
            json={
                "messages": [{"role": "user", "content": "hello"}],
                "max_tokens": 5,
                "stream": True,
            },
            timeout=60,
        ) as response:
            lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text and chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert len(chunks) >= 3


def test_full_queue_gives_429_with_retry_after(host: ModelHost) -> None:
    metrics = ServingMetrics()
    with chat_server(host, metrics) as server, contextlib.ExitStack() as places:
        # every place taken: the model's parallel sequences plus queue_size=1 waiting
        for _ in range(host.capacity + host.queue_size):
            places.enter_context(host.admission())
        full = host.depth()  # what the heartbeat reports: two decoding, one waiting
        assert (full.active, full.waiting, full.bound) == (2, 1, 3)
        reply = httpx.post(
            f"{server.url}/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2},
            timeout=30,
        )
    assert host.capacity == 2
    assert host.depth().model_dump() == {"active": 0, "waiting": 0, "bound": 3}
    assert reply.status_code == 429
    assert int(reply.headers["retry-after"]) >= 1
    assert metrics.report("tiny").rejected == 1


def test_bearer_token_is_required_when_configured(host: ModelHost) -> None:
    with chat_server(host, ServingMetrics(), token="s3cret-token") as server:
        anonymous = httpx.get(f"{server.url}/v1/models")
        wrong = httpx.get(f"{server.url}/v1/models", headers={"Authorization": "Bearer nope"})
        right = httpx.get(
            f"{server.url}/v1/models", headers={"Authorization": "Bearer s3cret-token"}
        )
        health = httpx.get(f"{server.url}/healthz")
    assert anonymous.status_code == 401 and wrong.status_code == 401
    assert right.json()["data"][0]["id"] == "tiny"
    assert health.json() == {"status": "ok", "model": "tiny", "key_required": True}


def test_unknown_model_and_empty_prompt_are_clear_errors(host: ModelHost) -> None:
    with chat_server(host, ServingMetrics()) as server:
        wrong_model = httpx.post(
            f"{server.url}/v1/chat/completions",
            json={"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}]},
        )
        empty = httpx.post(
            f"{server.url}/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "   "}], "max_tokens": 2},
            timeout=30,
        )
        malformed = httpx.post(f"{server.url}/v1/chat/completions", json={"messages": []})
    assert wrong_model.status_code == 404
    assert empty.status_code == 400 and "empty" in empty.json()["detail"]
    assert malformed.status_code == 422


def test_without_a_model_the_api_says_so() -> None:
    with chat_server(ModelHost(), ServingMetrics()) as server:
        models = httpx.get(f"{server.url}/v1/models")
        chat = httpx.post(
            f"{server.url}/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "hi"}]},
        )
        health = httpx.get(f"{server.url}/healthz")
    assert models.status_code == 200 and models.json()["data"] == []
    assert chat.status_code == 503 and "no model" in chat.json()["detail"]
    assert health.json()["model"] is None and health.json()["key_required"] is False


def test_content_parts_and_developer_role_are_accepted(host: ModelHost) -> None:
    with chat_server(host, ServingMetrics()) as server:
        reply = httpx.post(
            f"{server.url}/v1/chat/completions",
            json={
                "messages": [
                    {"role": "developer", "content": "be brief"},
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "what is "},
                            {"type": "text", "text": "water"},
                        ],
                    },
                ],
                "max_tokens": 3,
            },
            timeout=60,
        )
        image = httpx.post(
            f"{server.url}/v1/chat/completions",
            json={
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "http://x/y.png"}}],
                    }
                ]
            },
        )
    assert reply.status_code == 200 and reply.json()["usage"]["completion_tokens"] == 3
    assert image.status_code == 422


def test_a_continuation_needs_an_assistant_message_last_and_is_served_direct(
    host: ModelHost,
) -> None:
    asked = [{"role": "user", "content": "what is water"}]
    partial = [*asked, {"role": "assistant", "content": "Water is"}]
    base = {"max_tokens": 4, "continue_final_message": True}
    with chat_server(host, ServingMetrics()) as server:
        url = f"{server.url}/v1/chat/completions"
        no_partial = httpx.post(url, json={**base, "messages": asked}, timeout=60)
        refined = httpx.post(url, json={**base, "messages": partial, "refine": True}, timeout=60)
        continued = httpx.post(url, json={**base, "messages": partial}, timeout=60)
    assert no_partial.status_code == 422 and "assistant message last" in no_partial.text
    assert refined.status_code == 422 and "served direct" in refined.text
    assert continued.status_code == 200, continued.text
    assert continued.json()["edgefleet"]["strategy"] == "direct"
    assert continued.json()["usage"]["completion_tokens"] == 4
