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


PARTIAL = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "It is "}]


def test_a_continued_answer_is_left_open_after_its_text() -> None:
    fmt = ChatTemplateFormat(CHATML_TEMPLATE)
    text = fmt.render(PARTIAL, continue_final=True)
    assert text == "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\nIt is "
    empty = [*PARTIAL[:1], {"role": "assistant", "content": ""}]
    assert fmt.render(empty, continue_final=True) == fmt.render(PARTIAL[:1])
    assert PlainFormat().render(PARTIAL, continue_final=True) == "Question: 2+2?\nAnswer: It is "


def test_a_template_that_trims_the_answer_is_cut_after_it_with_its_space_kept() -> None:
    trimming = (
        "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] | trim }}</{{ m['role'] }}>"
        "{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}"
    )
    text = ChatTemplateFormat(trimming).render(PARTIAL, continue_final=True)
    assert text == "<user>2+2?</user><assistant>It is "


def test_only_an_assistant_message_can_be_continued() -> None:
    with pytest.raises(PromptFormatError, match="assistant"):
        ChatTemplateFormat(CHATML_TEMPLATE).render(PARTIAL[:1], continue_final=True)


def test_broken_chat_template_is_a_format_error() -> None:
    with pytest.raises(PromptFormatError, match="does not compile"):
        ChatTemplateFormat("{% for x in %}")


@pytest.mark.parametrize(
    ("load", "utilisation", "expected"),
    [(0.1, 0.98, False), (0.1, 0.5, True), (5.0, 0.98, True), (0.1, None, False)],
)
def test_contention_flag(load: float, utilisation: float | None, expected: bool) -> None:
    assert is_contended(threads=1, load_before=load, utilisation=utilisation) is expected
