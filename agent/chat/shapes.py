"""OpenAI chat replies (whole and streamed) the device sends; the request shape is in shared."""

from __future__ import annotations

import json
import time
from typing import Any

from pydantic import BaseModel

from agent.inference.refine import StageCallback, StageLimits
from agent.inference.strategies import run
from agent.inference.types import Generation
from agent.models.serving import Serving
from shared.strategies import DIRECT, Strategy


class Outcome(BaseModel):
    """What one request produced, whatever path it took."""

    text: str
    finish_reason: str
    prompt_tokens: int
    generated_tokens: int
    refined: bool
    strategy: str = DIRECT.name
    fell_back: bool = False
    fallback_reason: str | None = None
    stages: int = 1
    confidence: float | None = None
    ttft_s: float
    decode_s: float
    total_s: float


def plain_outcome(generation: Generation) -> Outcome:
    """The outcome of one plain generation."""
    return Outcome(
        text=generation.text,
        finish_reason=generation.finish_reason,
        prompt_tokens=generation.prompt_tokens,
        generated_tokens=generation.generated_tokens,
        refined=False,
        ttft_s=generation.ttft_s,
        decode_s=generation.decode_s,
        total_s=generation.total_s,
    )


def strategy_outcome(
    serving: Serving,
    messages: list[dict[str, str]],
    strategy: Strategy,
    max_tokens: int,
    temperature: float,
    on_token: StageCallback | None = None,
) -> Outcome:
    """Serve the last user message with ``strategy`` (a system message is kept)."""
    system = next((m["content"] for m in messages if m["role"] == "system"), None)
    question = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
    limits = StageLimits(
        answer_tokens=max_tokens,
        critique_tokens=min(160, max_tokens),
        refine_tokens=max_tokens,
        temperature=temperature,
    )
    result = run(
        serving.runtime, question, strategy, limits=limits, system=system, on_token=on_token
    )
    generations = [stage.generation for stage in result.stages]
    return Outcome(
        text=result.answer,
        finish_reason=result.served_stage.finish_reason,
        prompt_tokens=generations[0].prompt_tokens,
        generated_tokens=result.generated_tokens,
        refined=result.answer != result.initial,
        strategy=strategy.name,
        fell_back=result.fell_back,
        fallback_reason=result.fallback_reason,
        stages=len(generations),
        confidence=result.confidence,
        ttft_s=result.ttft_s,
        decode_s=sum(g.decode_s for g in generations),
        total_s=result.total_s,
    )


def extension(outcome: Outcome) -> dict[str, Any]:
    """The ``edgefleet`` extension object: refinement, timing, and the check's confidence.

    ``confidence`` is there only when the strategy checks its answer (vote:k,
    verify-refine); older agents never send it.
    """
    confidence = {} if outcome.confidence is None else {"confidence": round(outcome.confidence, 4)}
    return {
        "refined": outcome.refined,
        "strategy": outcome.strategy,
        "fell_back": outcome.fell_back,
        "fallback_reason": outcome.fallback_reason,
        "stages": outcome.stages,
        "ttft_ms": round(outcome.ttft_s * 1000, 2),
        "latency_ms": round(outcome.total_s * 1000, 2),
    } | confidence


def usage(outcome: Outcome) -> dict[str, int]:
    """OpenAI's token counts (also on the last streamed chunk, as with ``include_usage``)."""
    return {
        "prompt_tokens": outcome.prompt_tokens,
        "completion_tokens": outcome.generated_tokens,
        "total_tokens": outcome.prompt_tokens + outcome.generated_tokens,
    }


def completion(call_id: str, model_id: str, outcome: Outcome) -> dict[str, Any]:
    """A whole ``chat.completion`` reply."""
    return {
        "id": call_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model_id,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": outcome.text},
                "finish_reason": outcome.finish_reason,
            }
        ],
        "usage": usage(outcome),
        "edgefleet": extension(outcome),
    }


def sse(data: dict[str, Any]) -> str:
    """One server-sent event."""
    return f"data: {json.dumps(data)}\n\n"
