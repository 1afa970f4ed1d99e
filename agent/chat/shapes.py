"""OpenAI chat shapes: the request we accept and the replies (whole and streamed) we send."""

from __future__ import annotations

import json
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agent.inference.refine import StageCallback, StageLimits
from agent.inference.strategies import run
from agent.inference.types import Generation
from agent.models.serving import Serving
from shared.strategies import DIRECT, Strategy, StrategyName


class TextPart(BaseModel):
    """A text part of a message (OpenAI's content-parts form); other part types are refused."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    """One OpenAI chat message: a string, or a list of text parts (joined)."""

    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant", "developer"]
    content: str | list[TextPart]

    def as_dict(self) -> dict[str, str]:
        """The plain ``{role, content}`` the runtime takes (``developer`` acts as ``system``)."""
        content = self.content
        text = content if isinstance(content, str) else "".join(p.text for p in content)
        return {"role": "system" if self.role == "developer" else self.role, "content": text}


class ChatRequest(BaseModel):
    """The OpenAI request fields we honour; other OpenAI fields are accepted and ignored."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1, le=8192)
    max_completion_tokens: int | None = Field(None, ge=1, le=8192)
    temperature: float = Field(0.0, ge=0, le=2)
    stop: str | list[str] | None = None
    stream: bool = False
    refine: bool | None = Field(None, description="edgefleet extension: true is refine:1")
    strategy: StrategyName | None = Field(
        None,
        description="edgefleet extension: direct, refine:K, verify-refine or vote:K "
        "(default: the assignment's; wins over refine)",
    )

    def strategy_for(self, default: Strategy) -> Strategy:
        """The strategy asked for: ``strategy``, else ``refine``, else the device's default."""
        if self.strategy is not None:
            return Strategy.parse(self.strategy)
        return default if self.refine is None else Strategy.from_refine(self.refine)


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
        ttft_s=result.ttft_s,
        decode_s=sum(g.decode_s for g in generations),
        total_s=result.total_s,
    )


def extension(outcome: Outcome) -> dict[str, Any]:
    """The ``edgefleet`` extension object: refinement and timing."""
    return {
        "refined": outcome.refined,
        "strategy": outcome.strategy,
        "fell_back": outcome.fell_back,
        "fallback_reason": outcome.fallback_reason,
        "stages": outcome.stages,
        "ttft_ms": round(outcome.ttft_s * 1000, 2),
        "latency_ms": round(outcome.total_s * 1000, 2),
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
        "usage": {
            "prompt_tokens": outcome.prompt_tokens,
            "completion_tokens": outcome.generated_tokens,
            "total_tokens": outcome.prompt_tokens + outcome.generated_tokens,
        },
        "edgefleet": extension(outcome),
    }


def sse(data: dict[str, Any]) -> str:
    """One server-sent event."""
    return f"data: {json.dumps(data)}\n\n"
