"""Turn a chat (a list of role/content messages) into the text a model is prompted with.

Instruction-tuned GGUFs carry their own Jinja chat template; base models
(Gemma-3-270M from PyPI has none) get a plain transcript that a completion
model continues naturally, with stop strings at the next speaker's turn.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

from agent.inference.types import EmptyPrompt, InferenceError

logger = logging.getLogger(__name__)
Message = dict[str, str]
ROLES = ("system", "user", "assistant")


class PromptFormatError(ValueError):
    """Messages that cannot be rendered (unknown role, bad template)."""


class PromptFormat(Protocol):
    """Renders a conversation ending with an open assistant turn."""

    name: str
    stop: tuple[str, ...]

    def render(self, messages: Sequence[Message], *, continue_final: bool = False) -> str:
        """The prompt text, ending where the assistant's next reply starts.

        With ``continue_final`` the last message is a partial assistant answer, and the
        text ends right after it (its turn left open), so the model goes on with it.
        """
        ...


def _partial_answer(messages: Sequence[Message]) -> str:
    """The partial assistant answer a continued conversation ends with."""
    if not messages or messages[-1].get("role") != "assistant":
        raise PromptFormatError("only an assistant message can be continued")
    return messages[-1]["content"]


def check_messages(messages: Sequence[Message]) -> None:
    """Raise :class:`PromptFormatError` for a malformed message list."""
    for index, message in enumerate(messages):
        role = message.get("role")
        if role not in ROLES:
            raise PromptFormatError(f"message {index}: role must be one of {ROLES}, got {role!r}")
        if not isinstance(message.get("content"), str):
            raise PromptFormatError(f"message {index}: content must be a string")


@dataclass
class ChatTemplateFormat:
    """The model's own chat template (Jinja, as in Hugging Face tokenizer configs)."""

    template: str
    bos_token: str = ""
    eos_token: str = ""
    name: str = "chat-template"
    stop: tuple[str, ...] = ()
    _compiled: jinja2.Template | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        env = ImmutableSandboxedEnvironment(
            loader=jinja2.BaseLoader(),
            trim_blocks=True,
            lstrip_blocks=True,
            extensions=[jinja2.ext.loopcontrols],
        )
        try:
            self._compiled = env.from_string(self.template)
        except jinja2.TemplateError as exc:
            raise PromptFormatError(f"the model's chat template does not compile: {exc}") from None

    def render(self, messages: Sequence[Message], *, continue_final: bool = False) -> str:
        """Render with ``add_generation_prompt`` so the text ends at the assistant's turn.

        A continued answer is rendered closed, then cut right after its text (as
        Hugging Face's ``continue_final_message`` does); a template that trims the text
        is cut after the trimmed text, and the trimmed-off trailing space put back.
        """
        check_messages(messages)
        if not continue_final:
            return self._render(messages, add_generation_prompt=True)
        partial = _partial_answer(messages)
        if not partial.strip():  # nothing to continue: an open assistant turn
            return self._render(messages[:-1], add_generation_prompt=True)
        text = self._render(messages, add_generation_prompt=False)
        for shown in (partial, partial.strip()):
            at = text.rfind(shown)
            if at >= 0:
                trimmed = "" if shown == partial else partial[len(partial.rstrip()) :]
                return text[: at + len(shown)] + trimmed
        raise PromptFormatError("the model's chat template changes the answer to continue")

    def _render(self, messages: Sequence[Message], *, add_generation_prompt: bool) -> str:
        assert self._compiled is not None
        try:
            return self._compiled.render(
                messages=list(messages),
                add_generation_prompt=add_generation_prompt,
                bos_token=self.bos_token,
                eos_token=self.eos_token,
            )
        except jinja2.TemplateError as exc:
            raise PromptFormatError(f"the model's chat template failed: {exc}") from None


@dataclass
class PlainFormat:
    """A plain transcript for base models: they continue text, they do not follow turns."""

    name: str = "plain"
    user_label: str = "Question"
    assistant_label: str = "Answer"
    stop: tuple[str, ...] = ("\nQuestion:", "\n\n\n")

    def render(self, messages: Sequence[Message], *, continue_final: bool = False) -> str:
        """System text as a preamble, then labelled turns, ending with an open answer.

        A continued answer is the open one: its label and text, with no line after.
        """
        check_messages(messages)
        partial = _partial_answer(messages) if continue_final else None
        parts: list[str] = []
        for message in messages[:-1] if continue_final else messages:
            content = message["content"]
            if message["role"] == "system":
                parts.append(f"{content}\n\n")
            elif message["role"] == "user":
                parts.append(f"{self.user_label}: {content}\n")
            else:
                # keep the model's own leading space so the text extends the previous prompt
                sep = "" if content[:1].isspace() else " "
                parts.append(f"{self.assistant_label}:{sep}{content}\n")
        parts.append(f"{self.assistant_label}:")
        if partial:
            parts.append(("" if partial[:1].isspace() else " ") + partial)
        return "".join(parts)


def format_for(template: str | None, *, bos_token: str, eos_token: str) -> PromptFormat:
    """The model's own chat template, else (none, or one we cannot use) a plain transcript."""
    if not template:
        return PlainFormat()
    try:
        return ChatTemplateFormat(template, bos_token=bos_token, eos_token=eos_token)
    except PromptFormatError as exc:
        logger.warning("%s; using plain completion", exc)
        return PlainFormat()


def chat_prompt(
    prompt_format: PromptFormat,
    messages: list[Message],
    stop: list[str] | None,
    *,
    continue_final: bool = False,
) -> tuple[str, tuple[str, ...]]:
    """The prompt text of a conversation and every stop string (the caller's and the format's).

    ``continue_final``: the last message is a partial answer the model goes on with.

    Raises ``EmptyPrompt`` for no or only blank messages and ``InferenceError``
    for messages the format cannot render.
    """
    if not messages or not any(m.get("content", "").strip() for m in messages):
        raise EmptyPrompt("the prompt is empty")
    try:
        text = prompt_format.render(messages, continue_final=continue_final)
    except PromptFormatError as exc:
        raise InferenceError(str(exc)) from None
    return text, tuple(stop or ()) + tuple(prompt_format.stop)
