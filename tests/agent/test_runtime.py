"""The llama.cpp runtime: real inference on the tiny model, clear errors on bad input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from agent.inference.runtime import (
    EmptyPrompt,
    InferenceError,
    ModelLoadError,
    ModelRuntime,
    ModelTooLarge,
    PromptTooLong,
    choose_n_ctx,
)
from shared.gguf_info import read_gguf_info

QUESTION = [{"role": "user", "content": "what is the answer to the question"}]


def test_generation_reports_tokens_and_timings(tiny_runtime: ModelRuntime) -> None:
    out = tiny_runtime.chat(QUESTION, max_tokens=12)
    assert out.generated_tokens == 12
    assert out.finish_reason == "length"
    assert out.prompt_tokens > 5
    assert out.prompt_tokens_evaluated == out.prompt_tokens  # nothing cached yet
    assert 0 < out.prefill_s <= out.ttft_s <= out.total_s
    assert out.decode_s == pytest.approx(out.total_s - out.ttft_s)


def test_deterministic_mode_gives_identical_output_twice(tiny_gguf: Path) -> None:
    outputs = []
    for _ in range(2):
        runtime = ModelRuntime(tiny_gguf, threads=1, n_ctx=512, seed=0)
        outputs.append(runtime.chat(QUESTION, max_tokens=24).text)
        runtime.close()
    assert outputs[0] == outputs[1]
    assert outputs[0]


def test_streamed_pieces_concatenate_to_the_text(tiny_runtime: ModelRuntime) -> None:
    pieces: list[str] = []
    out = tiny_runtime.chat(QUESTION, max_tokens=16, on_token=pieces.append)
    assert "".join(pieces) == out.text
    assert len(pieces) > 1


def test_stop_string_cuts_the_text(tiny_runtime: ModelRuntime) -> None:
    full = tiny_runtime.chat(QUESTION, max_tokens=24).text
    stop = full[5:8]
    tiny_runtime.reset()
    pieces: list[str] = []
    cut = tiny_runtime.chat(QUESTION, max_tokens=24, stop=[stop], on_token=pieces.append)
    assert cut.finish_reason == "stop"
    assert cut.text == full[: full.index(stop)]
    assert stop not in "".join(pieces)


def test_repeated_prompt_prefix_is_served_from_the_kv_cache(tiny_runtime: ModelRuntime) -> None:
    first = tiny_runtime.chat(QUESTION, max_tokens=8)
    follow_up = [
        *QUESTION,
        {"role": "assistant", "content": first.text},
        {"role": "user", "content": "say more"},
    ]
    second = tiny_runtime.chat(follow_up, max_tokens=8)
    new_tokens = second.prompt_tokens - first.prompt_tokens - first.generated_tokens
    assert second.prompt_tokens_evaluated <= new_tokens + 1
    assert second.prompt_tokens_evaluated < second.prompt_tokens // 2


def test_model_without_chat_template_uses_plain_completion(
    tiny_gguf_factory: Callable[..., Path],
) -> None:
    runtime = ModelRuntime(tiny_gguf_factory("base", chat_template=None), threads=1, n_ctx=512)
    assert runtime.instruction_tuned is False
    assert runtime.prompt_format.name == "plain"
    out = runtime.chat(QUESTION, max_tokens=4)
    assert out.generated_tokens >= 1
    runtime.close()


def test_missing_model_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="cannot read"):
        ModelRuntime(tmp_path / "absent.gguf", threads=1)


def test_corrupt_model_is_a_load_error(tmp_path: Path, tiny_gguf: Path) -> None:
    garbage = tmp_path / "garbage.gguf"
    garbage.write_bytes(b"not a model at all" * 100)
    with pytest.raises(ModelLoadError, match="not a GGUF"):
        ModelRuntime(garbage, threads=1)
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(tiny_gguf.read_bytes()[:-4096])
    with pytest.raises(ModelLoadError, match="truncated"):
        ModelRuntime(truncated, threads=1)


def test_model_llama_cpp_rejects_is_a_load_error(tmp_path: Path, tiny_gguf: Path) -> None:
    unknown_arch = tmp_path / "unknown-arch.gguf"
    unknown_arch.write_bytes(tiny_gguf.read_bytes().replace(b"llama", b"llamx"))
    assert read_gguf_info(unknown_arch).architecture == "llamx"
    with pytest.raises(ModelLoadError, match="could not load"):
        ModelRuntime(unknown_arch, threads=1, n_ctx=256)


def test_too_large_model_is_refused_before_loading(tmp_path: Path, tiny_gguf: Path) -> None:
    # llama.cpp cannot load this file (unknown architecture), so only a check made
    # before loading can produce ModelTooLarge
    unloadable = tmp_path / "unloadable.gguf"
    unloadable.write_bytes(tiny_gguf.read_bytes().replace(b"llama", b"llamx"))
    with pytest.raises(ModelTooLarge) as caught:
        ModelRuntime(unloadable, threads=1, n_ctx=2048, memory_budget_mb=10)
    message = str(caught.value)
    assert "needs an estimated" in message and "budget is 10 MB" in message


def test_context_shrinks_to_fit_the_budget_when_not_requested(tiny_gguf: Path) -> None:
    info = read_gguf_info(tiny_gguf)
    roomy = choose_n_ctx(info, None, "f16", None)
    assert roomy == 2048
    from shared.gguf_info import estimate_memory

    fits_1024 = estimate_memory(info, n_ctx=1024).total_mb + 0.01
    assert choose_n_ctx(info, None, "f16", fits_1024) == 1024
    with pytest.raises(ModelTooLarge):
        choose_n_ctx(info, 2048, "f16", fits_1024)


def test_bad_prompts_give_clear_errors_and_the_runtime_keeps_serving(tiny_gguf: Path) -> None:
    runtime = ModelRuntime(tiny_gguf, threads=1, n_ctx=256)
    with pytest.raises(EmptyPrompt):
        runtime.chat([])
    with pytest.raises(EmptyPrompt):
        runtime.chat([{"role": "user", "content": "   "}])
    with pytest.raises(PromptTooLong, match="context holds 256"):
        runtime.chat([{"role": "user", "content": "the answer " * 400}])
    with pytest.raises(InferenceError, match="role"):
        runtime.chat([{"role": "wizard", "content": "hi"}])
    out = runtime.chat(QUESTION, max_tokens=6)
    assert out.generated_tokens == 6
    runtime.close()


def test_generation_is_capped_by_the_context_left(tiny_gguf: Path) -> None:
    runtime = ModelRuntime(tiny_gguf, threads=1, n_ctx=256)
    out = runtime.chat(QUESTION, max_tokens=10_000)
    assert out.prompt_tokens + out.generated_tokens <= 256
    assert out.finish_reason == "length"
    runtime.close()


@pytest.mark.slow
def test_gemma3_base_model_is_detected_and_answers_in_plain_format(gemma3_path: Path) -> None:
    runtime = ModelRuntime(gemma3_path, threads=1, n_ctx=1024)
    assert runtime.instruction_tuned is False
    assert runtime.prompt_format.name == "plain"
    question = [{"role": "user", "content": "What is the capital of France?"}]
    out = runtime.chat(question, max_tokens=8)
    assert out.generated_tokens >= 1 and out.text.strip()
    runtime.close()


def test_closed_runtime_refuses_calls_clearly(tiny_gguf: Path) -> None:
    runtime = ModelRuntime(tiny_gguf, threads=1, n_ctx=256)
    runtime.close()
    runtime.close()  # idempotent
    with pytest.raises(InferenceError, match="closed"):
        runtime.chat(QUESTION)


def test_kv_cache_type_llama_cpp_would_reject_is_explained(tiny_gguf: Path) -> None:
    with pytest.raises(ModelLoadError, match="divisible by 32"):
        ModelRuntime(tiny_gguf, threads=1, n_ctx=256, kv_cache_type="q8_0")
    with pytest.raises(ModelLoadError, match="unknown KV-cache type"):
        ModelRuntime(tiny_gguf, threads=1, n_ctx=256, kv_cache_type="f8")


@pytest.mark.slow
def test_smollm2_runs_with_a_q8_0_kv_cache(smollm2_path: Path) -> None:
    runtime = ModelRuntime(smollm2_path, threads=1, n_ctx=512, kv_cache_type="q8_0")
    out = runtime.chat([{"role": "user", "content": "Name a colour."}], max_tokens=6)
    assert out.generated_tokens >= 1
    runtime.close()
