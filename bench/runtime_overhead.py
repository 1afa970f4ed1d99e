"""Decode tokens/s through agent.inference.runtime vs a bare llama-cpp-python loop, side by side.

Both load the same GGUF with the same threads, context and sampler (greedy,
repeat penalty 1.1), get the same prompt from an empty cache, and generate the
same number of tokens. Runs alternate A/B so machine noise hits both equally.
On a shared machine wall-clock tok/s swings with other load, so the CPU time
of the calling thread (llama.cpp computes on it with one thread) is reported
too: it is what the runtime's own Python work would add to.
Usage:

    python bench/runtime_overhead.py MODEL.gguf [--tokens 128] [--runs 8] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import llama_cpp
from llama_cpp import Llama

from agent.inference.runtime import ModelRuntime, load_cpu_backends

PROMPT = (
    "The lighthouse keeper climbed the stairs as the storm rolled in from the sea. "
    "He had kept the light for forty years, and tonight"
)


def bare_decode_tok_s(llm: Llama, prompt: str, n_tokens: int) -> tuple[float, int, float]:
    """The plain llama-cpp-python loop most scripts use (stops at end of text): decode tok/s."""
    llm.reset()
    cpu0 = time.thread_time()
    tokens = llm.tokenize(prompt.encode(), add_bos=True, special=True)
    first, count = 0.0, 0
    for token in llm.generate(
        tokens, temp=0.0, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.1, reset=True
    ):
        if count == 0:
            first = time.perf_counter()
        if llama_cpp.llama_vocab_is_eog(llm._model.vocab, token):
            break
        llm.detokenize([token])
        count += 1
        if count >= n_tokens:
            break
    wall = time.perf_counter() - first
    return (count - 1) / wall, count, time.thread_time() - cpu0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--bare-first", action="store_true", help="load the bare model first")
    args = parser.parse_args()

    def load_bare() -> Llama:
        load_cpu_backends()  # what ModelRuntime does first, for a portable build
        return Llama(args.model, n_ctx=1024, n_threads=args.threads, n_threads_batch=args.threads,
                     seed=0, swa_full=True, verbose=False)  # fmt: skip

    bare = load_bare() if args.bare_first else None
    runtime = ModelRuntime(args.model, threads=args.threads, n_ctx=1024)
    bare = bare or load_bare()
    prompt = PROMPT  # raw text through runtime.complete: both evaluate identical tokens
    ours_runs, bare_runs, ratios, cpu_ratios = [], [], [], []
    for run in range(args.runs + 1):
        # alternate which goes first, so a slow spell does not always hit the same side
        if run % 2:
            theirs, count, bare_cpu = bare_decode_tok_s(bare, prompt, args.tokens)
        runtime.reset()
        cpu0 = time.thread_time()  # n_threads=1: llama.cpp computes on this thread
        ours = runtime.complete(prompt, max_tokens=args.tokens)
        ours_cpu = time.thread_time() - cpu0
        if not run % 2:
            theirs, count, bare_cpu = bare_decode_tok_s(bare, prompt, args.tokens)
        if run == 0:
            continue  # warm-up
        ours_runs.append(ours.decode_tok_s)
        bare_runs.append(theirs)
        ratios.append(ours.decode_tok_s / theirs)
        cpu_ratios.append(bare_cpu / ours_cpu)
        print(f"run {run}: runtime {ours.decode_tok_s:.1f} tok/s ({ours.generated_tokens} tok), "
              f"bare {theirs:.1f} tok/s ({count} tok), ratio {ratios[-1]:.3f}; "
              f"CPU-time ratio {cpu_ratios[-1]:.3f}")  # fmt: skip
    print(
        f"{runtime.model_id}: runtime {statistics.fmean(ours_runs):.1f} tok/s, "
        f"bare {statistics.fmean(bare_runs):.1f} tok/s, "
        f"ratio mean {statistics.fmean(ratios):.3f} median {statistics.median(ratios):.3f}; "
        f"CPU-time ratio (bare/runtime, whole call) median {statistics.median(cpu_ratios):.3f} "
        f"(threads {args.threads}, {args.tokens} tokens, {args.runs} runs)"
    )


if __name__ == "__main__":
    main()
