"""Self-refinement with KV-cache reuse vs a naive three-independent-prompts implementation.

Both produce y0, c0 and y1 with the same model, threads, instructions and token
limits (greedy, so the texts match). The naive one sends each stage's full
conversation to an empty cache; ours extends one conversation, so llama.cpp
evaluates only the new tokens. Runs alternate so machine noise hits both.
Usage:

    python bench/refine_kv_reuse.py MODEL.gguf [--runs 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

from agent.inference.refine import CRITIQUE_INSTRUCTION, REFINE_INSTRUCTION, StageLimits, answer
from agent.inference.runtime import ModelRuntime

QUESTIONS = (
    "A shop sells pencils at 3 for 45 cents. How many cents do 12 pencils cost?",
    "Give three simple ways to keep drinking water safe at home.",
)
LIMITS = StageLimits(answer_tokens=128, critique_tokens=96, refine_tokens=128)


def naive(runtime: ModelRuntime, question: str) -> tuple[float, int, list[str]]:
    """Three full prompts, each from an empty cache: (seconds, prompt tokens evaluated, texts)."""
    started, evaluated, texts = time.perf_counter(), 0, []
    messages = [{"role": "user", "content": question}]
    steps = (
        (LIMITS.answer_tokens, CRITIQUE_INSTRUCTION),
        (LIMITS.critique_tokens, REFINE_INSTRUCTION),
        (LIMITS.refine_tokens, None),
    )
    for max_tokens, next_instruction in steps:
        runtime.reset()
        out = runtime.chat(messages, max_tokens=max_tokens)
        evaluated += out.prompt_tokens_evaluated
        texts.append(out.text)
        if next_instruction:
            messages += [{"role": "assistant", "content": out.text},
                         {"role": "user", "content": next_instruction}]  # fmt: skip
    return time.perf_counter() - started, evaluated, texts


def reused(runtime: ModelRuntime, question: str) -> tuple[float, int, list[str], int]:
    """agent.inference.refine: (seconds, prompt tokens evaluated, texts, conversation tokens)."""
    runtime.reset()
    result = answer(runtime, question, limits=LIMITS)
    last = result.stages[-1]
    texts = [stage.text for stage in result.stages]
    return (
        result.total_s,
        result.prompt_tokens_evaluated,
        texts,
        last.prompt_tokens + last.generated_tokens,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    runtime = ModelRuntime(args.model, threads=args.threads, n_ctx=2048)
    ratios = []
    for run in range(args.runs):
        for question in QUESTIONS:
            ours_s, ours_eval, ours_texts, final = reused(runtime, question)
            naive_s, naive_eval, naive_texts = naive(runtime, question)
            # texts can differ: the naive prompt re-tokenises y0's text, and BPE may split it
            # differently from the tokens the model generated (e.g. "\n\n" vs "\n" "\n")
            same = "same texts" if ours_texts == naive_texts else "texts differ"
            ratios.append(ours_s / naive_s)
            print(f"run {run + 1} {question[:30]!r}: reuse {ours_s:.2f} s, {ours_eval} prompt tok "
                  f"evaluated (final conversation {final}); naive {naive_s:.2f} s, {naive_eval} "
                  f"evaluated; time ratio {ratios[-1]:.2f}; {same}")  # fmt: skip
    print(
        f"{runtime.model_id}: wall-time ratio reuse/naive mean {statistics.fmean(ratios):.2f} "
        f"median {statistics.median(ratios):.2f} over {len(ratios)} refined answers "
        f"(threads {args.threads}, limits {LIMITS.answer_tokens}/{LIMITS.critique_tokens}/"
        f"{LIMITS.refine_tokens})"
    )


if __name__ == "__main__":
    main()
