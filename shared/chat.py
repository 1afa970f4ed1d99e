"""The OpenAI chat request both the device's chat API and the controller's gateway accept."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.strategies import DIRECT, Strategy, StrategyName

MAX_MESSAGES = 256
"""Most messages one request may carry (a long chat is summarised or cut by the client)."""


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
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
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
    escalate: bool | None = Field(
        None,
        description="edgefleet gateway extension: if the answer's confidence is below the "
        "gateway's threshold, ask a device with a stronger model (non-streamed requests)",
    )
    latency_budget_ms: int | None = Field(
        None,
        ge=1,
        le=3_600_000,
        description="edgefleet gateway extension: escalate only to "
        "devices whose measured latency fits what is left of this",
    )
    continue_final_message: bool = Field(
        False,
        description="vLLM's extension: the last message is a partial assistant answer to "
        "continue (its turn is left open); the reply holds only the text that follows it",
    )

    @model_validator(mode="after")
    def _continues_an_answer(self) -> ChatRequest:
        """A continuation needs an assistant message last, and is served direct."""
        if not self.continue_final_message:
            return self
        if self.messages[-1].role != "assistant":
            raise ValueError("continue_final_message needs an assistant message last")
        if self.strategy not in (None, DIRECT.name) or self.refine:
            raise ValueError("a continued answer is served direct: no strategy or refine")
        return self

    def strategy_for(self, default: Strategy) -> Strategy:
        """The strategy asked for: ``strategy``, else ``refine``, else the device's default.

        A continuation is always direct: refining restarts the answer it continues.
        """
        if self.continue_final_message:
            return DIRECT
        if self.strategy is not None:
            return Strategy.parse(self.strategy)
        return default if self.refine is None else Strategy.from_refine(self.refine)
