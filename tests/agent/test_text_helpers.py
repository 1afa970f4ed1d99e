"""Stop-string scanning over streamed pieces, prompt formats and the contention flag."""

from __future__ import annotations

import pytest

from agent.bench.process import is_contended
from agent.engine.tiny_gguf import CHATML_TEMPLATE
from agent.inference.prompt_format import ChatTemplateFormat, PlainFormat, PromptFormatError
from agent.inference.streaming import StopScanner


def test_stop_string_split_across_pieces_is_never_streamed() -> None:
    scanner = StopScanner(["\nQuestion:"])
    shown = [scanner.feed(piece)[0] for piece in ["Paris is", " the capital.\nQue", "stion: next"]]
    assert "".join(shown) == "Paris is the capital."
    assert scanner.hit and scanner.text == "Paris is the capital."


def test_held_back_text_is_released_when_it_is_not_a_stop() -> None:
    scanner = StopScanner(["###"])
    assert scanner.feed("a #")[0] == "a "
    assert scanner.feed("#")[0] == ""  # "##" could still become "###"
    assert scanner.feed(" b")[0] == "## b"
    assert scanner.feed(" #", final=True)[0] == " #"  # the end releases everything
    assert not scanner.hit


def test_plain_format_extends_the_previous_prompt_with_the_reply() -> None:
    fmt = PlainFormat()
    first = fmt.render([{"role": "user", "content": "2+2?"}])
    second = fmt.render(
        [
            {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": " 4"},
            {"role": "user", "content": "Sure?"},
        ]
    )
    assert first == "Question: 2+2?\nAnswer:"
    assert second.startswith(first + " 4\n")


def test_chat_template_renders_and_rejects_unknown_roles() -> None:
    fmt = ChatTemplateFormat(CHATML_TEMPLATE)
    text = fmt.render([{"role": "user", "content": "hi"}])
    assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    with pytest.raises(PromptFormatError, match="role"):
        fmt.render([{"role": "robot", "content": "hi"}])


def test_broken_chat_template_is_a_format_error() -> None:
    with pytest.raises(PromptFormatError, match="does not compile"):
        ChatTemplateFormat("{% for x in %}")


@pytest.mark.parametrize(
    ("load", "utilisation", "expected"),
    [(0.1, 0.98, False), (0.1, 0.5, True), (5.0, 0.98, True), (0.1, None, False)],
)
def test_contention_flag(load: float, utilisation: float | None, expected: bool) -> None:
    assert is_contended(threads=1, load_before=load, utilisation=utilisation) is expected
