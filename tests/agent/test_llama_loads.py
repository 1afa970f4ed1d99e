"""llama-cpp-python really loads the generated and the real demo models."""

from pathlib import Path

import pytest
from llama_cpp import Llama

from agent.inference.runtime import load_cpu_backends


@pytest.fixture(autouse=True)
def _cpu_backends() -> None:
    load_cpu_backends()  # a portable build's CPU variants are libraries ggml must be shown


def test_tiny_generated_gguf_loads_and_generates(tiny_gguf: Path) -> None:
    llm = Llama(str(tiny_gguf), n_ctx=256, n_threads=1, verbose=False, seed=0)
    out = llm.create_completion("the answer is", max_tokens=8, temperature=0)
    assert out["usage"]["completion_tokens"] == 8


@pytest.mark.slow
@pytest.mark.parametrize("fixture", ["smollm2_path", "gemma3_path"])
def test_real_demo_model_answers(fixture: str, request: pytest.FixtureRequest) -> None:
    path: Path = request.getfixturevalue(fixture)
    llm = Llama(str(path), n_ctx=512, n_threads=1, verbose=False, seed=0)
    out = llm.create_completion("The capital of France is", max_tokens=8, temperature=0)
    text = out["choices"][0]["text"]
    assert out["usage"]["completion_tokens"] >= 1
    assert text.strip()
