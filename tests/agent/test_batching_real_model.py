"""Continuous batching and kept conversations with the real SmolLM2 (slow: a real model answers)."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agent.chat.metrics import ServingMetrics
from agent.inference.batch import BatchEngine
from agent.inference.runtime import ModelRuntime
from agent.models.serving import ModelHost, Serving
from tests.agent.daemon_support import chat_server, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
QUESTIONS = (
    "What is the capital of France?",
    "Name three primary colours.",
    "How many legs does a spider have?",
    "Give one tip for keeping water clean.",
)
TOKENS = 40


@pytest.fixture(scope="module")
def engine(smollm2_path: Path) -> Iterator[BatchEngine]:
    engine = BatchEngine(smollm2_path, parallel=4, threads=1, n_ctx=1024, model_id="smollm2")
    yield engine
    engine.close()


@pytest.fixture
def host(engine: BatchEngine) -> Iterator[ModelHost]:
    engine.reset()
    host = ModelHost(queue_size=2)
    host.swap(Serving(runtime=engine, model_id="smollm2", path=Path("smollm2.gguf")))
    yield host


def _stream(url: str, question: str, texts: dict[str, str]) -> None:
    payload = {
        "messages": [{"role": "user", "content": question}],
        "max_tokens": TOKENS,
        "temperature": 0,
        "stream": True,
    }
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=payload, timeout=300) as reply:
        lines = [line[6:] for line in reply.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    chunks = [json.loads(line) for line in lines[:-1]]
    texts[question] = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)


def _parting_point(a: str, b: str) -> int:
    """Where two answers part, moved back to a token start: before the space that begins
    the next word (tokens carry their leading space), or to the word's start if they part
    mid-word (": 8" vs " indeed" part right where they differ)."""
    cut = len(os.path.commonprefix([a, b]))
    if cut > 0 and a[cut - 1].isalnum() and all(t[cut : cut + 1].isalnum() for t in (a, b)):
        cut = a.rfind(" ", 0, cut)
    elif cut > 0 and a[cut - 1] == " ":
        cut -= 1
    return max(cut, 0)


def _assert_flip_at_a_near_tie(runtime: ModelRuntime, question: str, a: str, b: str) -> None:
    """The two answers part where the model was nearly indifferent between them."""
    cut = _parting_point(a, b)
    prompt = runtime.prompt_format.render([{"role": "user", "content": question}]) + a[:cut]
    probs = runtime.next_token_probs(prompt, [a[cut:], b[cut:]])
    assert len(probs) == 2, (a, b)
    low, high = sorted(probs.values())
    assert low > 0.05 and high / low < 4, probs


def test_four_concurrent_streams_match_the_answers_served_alone(
    engine: BatchEngine, host: ModelHost, smollm2_runtime: ModelRuntime
) -> None:
    alone = {}
    for question in QUESTIONS:
        engine.reset()  # no kept prefix: each evaluated from scratch, like the batched ones
        reply = engine.chat([{"role": "user", "content": question}], max_tokens=TOKENS)
        alone[question] = reply.text
    engine.reset()
    batched: dict[str, str] = {}
    decoded_before = engine.decoded_tokens
    with chat_server(host, ServingMetrics()) as server:
        clients = [
            threading.Thread(target=_stream, args=(server.url, q, batched)) for q in QUESTIONS
        ]
        for client in clients:
            client.start()
        # all four are decoded together at some step (each has its own sequence)
        assert wait_until(lambda: engine.load()[0] == 4, timeout=120)
        for client in clients:
            client.join()
    # a token's logits depend slightly on what else is in its batch (kernel paths and
    # summation order differ with the batch's shape), so greedy decoding can flip at a
    # near-tie: every answer that differs must part from its served-alone twin at one
    # (which of them flip depends on how the four happened to be batched, so not how many)
    differing = [q for q in QUESTIONS if batched[q] != alone[q]]
    for question in differing:
        _assert_flip_at_a_near_tie(smollm2_runtime, question, alone[question], batched[question])
    assert all(batched.values())
    assert engine.decoded_tokens > decoded_before
    assert engine.load() == (0, 0)


def test_a_cancelled_stream_frees_its_sequence(engine: BatchEngine, host: ModelHost) -> None:
    cancelled_before = engine.cancelled_sequences
    payload = {
        "messages": [{"role": "user", "content": "Count from 1 to 500, one number per line."}],
        "max_tokens": 900,
        "stream": True,
    }
    with chat_server(host, ServingMetrics()) as server:
        with httpx.stream(
            "POST", f"{server.url}/v1/chat/completions", json=payload, timeout=120
        ) as reply:
            seen = 0
            for line in reply.iter_lines():
                seen += line.startswith("data: ")
                if seen >= 4:  # the role chunk and three pieces of text, then hang up
                    break
        assert wait_until(lambda: engine.cancelled_sequences == cancelled_before + 1, 60)
        assert wait_until(lambda: engine.load() == (0, 0) and host.admitted == 0, 10)
        assert engine.kept_conversations() == 0  # its KV cells were cleared too
        after = httpx.post(
            f"{server.url}/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4},
            timeout=120,
        )
    assert after.status_code == 200


def test_the_next_turn_evaluates_only_its_new_tokens(engine: BatchEngine) -> None:
    engine.reset()
    messages = [{"role": "user", "content": QUESTIONS[0]}]
    first = engine.chat(messages, max_tokens=TOKENS)
    assert first.prompt_tokens_evaluated == first.prompt_tokens
    messages += [
        {"role": "assistant", "content": first.text},
        {"role": "user", "content": "And of Germany?"},
    ]
    decoded_before = engine.decoded_tokens
    second = engine.chat(messages, max_tokens=TOKENS)
    # the kept cells hold turn 1's prompt and the generated tokens fed back (the token that
    # ended it, end-of-turn or the last one allowed, was sampled, never decoded)
    kept = first.prompt_tokens + first.generated_tokens - (first.finish_reason == "length")
    assert second.prompt_tokens_evaluated == second.prompt_tokens - kept
    assert second.prompt_tokens_evaluated < 30 < kept
    # counted independently: tokens that went through llama_decode in turn 2
    fed_back = second.generated_tokens - (second.finish_reason == "length")
    assert engine.decoded_tokens - decoded_before == second.prompt_tokens_evaluated + fed_back


def test_without_prefix_reuse_every_turn_is_evaluated_whole(smollm2_path: Path) -> None:
    cold = BatchEngine(smollm2_path, parallel=1, threads=1, n_ctx=1024, prefix_reuse=False)
    try:
        messages = [{"role": "user", "content": QUESTIONS[0]}]
        first = cold.chat(messages, max_tokens=8)
        messages += [
            {"role": "assistant", "content": first.text},
            {"role": "user", "content": "And of Germany?"},
        ]
        second = cold.chat(messages, max_tokens=8)
    finally:
        cold.close()
    assert second.prompt_tokens_evaluated == second.prompt_tokens > first.prompt_tokens
