"""Continuous batching and conversation KV reuse, side by side in one run.

For 1, 2 and 4 concurrent clients (a run of 2 questions per client by default,
each client sending the next unasked one when its last is answered; greedy,
same token limit): aggregate tok/s (generated tokens over wall
time, prefill included) when they are batched by
:class:`agent.inference.batch.BatchEngine` against the same clients served one
at a time (an engine of one sequence, the others waiting in its queue), and the
p50/p95 time to first token (from submission, waiting included) on both sides;
and what one decode step costs in CPU time with 1, 2 and 4 sequences' tokens in it. Then a five-turn
conversation, TTFT of each turn with the conversation's KV kept (prefix reuse
on) and with every turn re-prefilled (off); and twice as many conversations as the
engine has sequences, taking turns, with conversations pushed out of their cells
stored in host memory and copied back (store on) or evaluated again (store off).
Throughput is measured without prefix reuse (both sides evaluate every prompt
whole) unless ``--reuse``: then both sides serve as an agent does, each request
finding the shared system prompt already in its cells.

``--q4-0`` also measures a Q4_0 copy of each model (requantized into a temporary
directory; a little worse in quality, but the weight format for which ggml's x86
CPU backend repacks weights into kernels that multiply several sequences' tokens
at once, which Q4_1 does not). Usage:

    python bench/batching.py MODEL.gguf [MODEL.gguf ...] [--profile dev-x86-1core]
        [--tokens 64] [--rounds 1] [--per-client 2] [--reuse] [--q4-0] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import llama_cpp

from agent.inference.batch import BatchEngine
from agent.inference.llama_batch import LlamaSequences
from agent.inference.types import Generation
from shared.profiles import DeviceProfile, parse_profile
from shared.stats import percentile

QUESTIONS = (
    "Give three simple ways to keep drinking water safe at home.",
    "Explain in two sentences why the sky looks blue.",
    "What should a student bring to a science exam? List four things.",
    "A shop sells pencils at 3 for 45 cents. How much do 12 pencils cost?",
    "How can a family save water during a dry season?",
    "What is the difference between weather and climate?",
    "Name three animals that live in the desert and one thing each needs to survive.",
    "Why should we wash our hands before eating?",
)
PER_CLIENT = 2
"""Requests per client by default, one after the other, so the batch stays full while they run."""
SYSTEM = (
    "You are the helper of a small rural school. Answer the pupils' questions in plain words, "
    "briefly and correctly. If you are not sure, say so. Do not invent facts or numbers."
)
TURNS = (
    "What is photosynthesis?",
    "Which part of the plant does it happen in?",
    "Why are most leaves green?",
    "What do plants need besides light?",
    "Summarise what we discussed in one sentence.",
)
CONCURRENCY = (1, 2, 4)


def _ask(engine: BatchEngine, question: str, tokens: int) -> Generation:
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]
    return engine.chat(messages, max_tokens=tokens)


def _requests(n: int, per_client: int) -> list[str]:
    """The ``n * per_client`` questions of a run, each a different text (so no prompt is
    found whole in the cells of an earlier one)."""
    return [f"Question {k + 1}: {QUESTIONS[k % len(QUESTIONS)]}" for k in range(n * per_client)]


def together(
    engine: BatchEngine, n: int, tokens: int, per_client: int
) -> tuple[float, list[Generation]]:
    """The run's requests from ``n`` clients at once: each takes the next one still unasked
    when its last is answered, so ``n`` are in flight until the run's requests run out.

    On an engine of one sequence this is serving one at a time: the others wait in its
    queue (their TTFT says how long). With prefix reuse each request finds the system
    prompt kept from an earlier one, as a serving agent would.
    """
    engine.reset()
    questions = _requests(n, per_client)
    out: list[Generation | None] = [None] * len(questions)
    next_index = iter(range(len(questions)))
    lock = threading.Lock()

    def client() -> None:
        while True:
            with lock:
                k = next(next_index, None)
            if k is None:
                return
            out[k] = _ask(engine, questions[k], tokens)

    threads = [threading.Thread(target=client) for _ in range(n)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done = [g for g in out if g is not None]
    assert len(done) == len(questions)
    return time.perf_counter() - started, done


class _Side:
    """Totals of one side (batched or one at a time) over the rounds."""

    def __init__(self) -> None:
        self.wall_s = self.cpu_s = 0.0
        self.tokens = 0
        self.generations: list[Generation] = []

    def run(self, serve: Serve, engine: BatchEngine, n: int, tokens: int, per_client: int) -> None:
        cpu = time.process_time()
        wall, generations = serve(engine, n, tokens, per_client)
        self.cpu_s += time.process_time() - cpu
        self.wall_s += wall
        self.tokens += sum(g.generated_tokens for g in generations)
        self.generations += generations


Serve = Callable[[BatchEngine, int, int, int], tuple[float, list[Generation]]]


def throughput(
    engine: BatchEngine, single: BatchEngine, tokens: int, rounds: int, per_client: int
) -> list[dict[str, object]]:
    """The same clients on ``engine`` (batched) and on ``single`` (one sequence: served one
    at a time), for each concurrency, alternating so load hits both.

    CPU seconds of this process are reported beside wall time: on a shared machine
    they show the work each side needed, whatever the other processes took.
    """
    for warming in (engine, single):  # weights paged in and threads started before timing
        _ask(warming, QUESTIONS[0], tokens)
    rows = []
    for n in CONCURRENCY:
        serial, batched = _Side(), _Side()
        for _ in range(rounds):
            serial.run(together, single, n, tokens, per_client)
            batched.run(together, engine, n, tokens, per_client)
        waited = [g.ttft_s * 1000 for g in serial.generations]
        ttft = [g.ttft_s * 1000 for g in batched.generations]
        pairs = zip(serial.generations, batched.generations, strict=True)
        rows.append(
            {
                "concurrent": n,
                "serial_tok_s": round(serial.tokens / serial.wall_s, 2),
                "batched_tok_s": round(batched.tokens / batched.wall_s, 2),
                "speedup": round(
                    (batched.tokens / batched.wall_s) / (serial.tokens / serial.wall_s), 2
                ),
                "cpu_speedup": round(
                    (batched.tokens / batched.cpu_s) / (serial.tokens / serial.cpu_s), 2
                ),
                "ttft_ms_p50": round(percentile(ttft, 50), 1),
                "ttft_ms_p95": round(percentile(ttft, 95), 1),
                "serial_ttft_ms_p50": round(percentile(waited, 50), 1),
                "serial_ttft_ms_p95": round(percentile(waited, 95), 1),
                "same_text": f"{sum(a.text == b.text for a, b in pairs)}/{len(ttft)}",
            }
        )
    return rows


def conversation(engine: BatchEngine, tokens: int) -> list[dict[str, float]]:
    """TTFT and prompt tokens evaluated of each turn of one conversation."""
    engine.reset()
    messages = [{"role": "system", "content": SYSTEM}]
    rows = []
    for turn, question in enumerate(TURNS, 1):
        messages.append({"role": "user", "content": question})
        reply = engine.chat(messages, max_tokens=tokens)
        messages.append({"role": "assistant", "content": reply.text})
        rows.append(
            {
                "turn": turn,
                "prompt_tokens": reply.prompt_tokens,
                "evaluated": reply.prompt_tokens_evaluated,
                "ttft_ms": round(reply.ttft_s * 1000, 1),
            }
        )
    return rows


def step_cost(path: Path, profile: DeviceProfile, steps: int = 40) -> list[dict[str, float]]:
    """CPU and wall milliseconds of one decode step carrying 1, 2 or 4 sequences' tokens.

    Each sequence holds 64 prompt tokens; every step adds one token per sequence
    at the same position and removes it again, so all steps see the same cache.
    If a step of 4 tokens costs 4 steps of 1, batching cannot raise throughput.
    """
    n_ctx = 256
    llama = LlamaSequences(
        path, n_ctx=n_ctx, parallel=max(CONCURRENCY), threads=profile.threads, kv_cache_type="f16"
    )
    prompt = llama.tokenize(" ".join(QUESTIONS), add_bos=True)[:64]
    try:
        for seq in range(max(CONCURRENCY)):
            llama.clear_batch()
            for position, token in enumerate(prompt):
                llama.add(token, position, seq, logits=False)
            assert llama.decode() == 0
        rows = []
        for n in CONCURRENCY:
            cpu, wall = [], []
            for _ in range(steps):
                llama.clear_batch()
                for seq in range(n):
                    llama.add(prompt[-1], len(prompt), seq, logits=True)
                started_cpu, started = time.process_time(), time.perf_counter()
                assert llama.decode() == 0
                cpu.append(time.process_time() - started_cpu)
                wall.append(time.perf_counter() - started)
                for seq in range(n):
                    llama.forget(seq, len(prompt))
            cpu_ms = statistics.median(cpu) * 1000
            rows.append(
                {
                    "sequences": n,
                    "cpu_ms_per_step": round(cpu_ms, 1),
                    "wall_ms_per_step": round(statistics.median(wall) * 1000, 1),
                    "cpu_ms_per_token": round(cpu_ms / n, 1),
                }
            )
        return rows
    finally:
        llama.close()


@dataclass(frozen=True)
class Workload:
    """What the clients ask for: answer length, rounds, requests per client, prefix reuse."""

    tokens: int
    rounds: int
    per_client: int
    reuse: bool


def bench_model(path: Path, profile: DeviceProfile, load: Workload) -> dict[str, object]:
    """Every measurement for one model, under one profile."""
    tokens = load.tokens
    engine = BatchEngine(path, profile=profile, parallel=max(CONCURRENCY), prefix_reuse=load.reuse)
    single = BatchEngine(path, profile=profile, parallel=1, prefix_reuse=load.reuse)
    try:
        rows = throughput(engine, single, tokens, load.rounds, load.per_client)
    finally:
        engine.close()
        single.close()
    warm = BatchEngine(path, profile=profile, parallel=max(CONCURRENCY))
    try:
        reused = conversation(warm, tokens)
    finally:
        warm.close()
    cold = BatchEngine(path, profile=profile, parallel=1, prefix_reuse=False)
    try:
        fresh = conversation(cold, tokens)
    finally:
        cold.close()
    crowd = {}
    for side, store_bytes in (("store_on", None), ("store_off", 0)):
        crowded_engine = BatchEngine(path, profile=profile, store_bytes=store_bytes)
        try:
            crowd[side] = crowded(crowded_engine, tokens)
        finally:
            crowded_engine.close()
    steps = step_cost(path, profile)
    on5, off5 = reused[-1]["ttft_ms"], fresh[-1]["ttft_ms"]
    return {
        "model": engine.model_id,
        "threads": engine.threads,
        "throughput_prefix_reuse": load.reuse,
        "requests_per_client": load.per_client,
        "throughput": rows,
        "decode_step": steps,
        "conversation_reuse_on": reused,
        "conversation_reuse_off": fresh,
        "turn5_over_turn1_on": round(on5 / reused[0]["ttft_ms"], 2),
        "turn5_over_turn1_off": round(off5 / fresh[0]["ttft_ms"], 2),
        "turn5_on_over_off": round(on5 / off5, 2),
        "crowded": crowd,
        "crowded_ttft_on_over_off": round(
            crowd["store_on"]["ttft_ms_p50"] / crowd["store_off"]["ttft_ms_p50"], 2
        ),
    }


def crowded(engine: BatchEngine, tokens: int, turns: int = 3) -> dict[str, float]:
    """Twice as many conversations as sequences, taking turns one request at a time.

    Every later turn finds its conversation pushed out of the cells by the others:
    its TTFT and the prompt tokens it evaluated tell whether the store brought it back.
    """
    engine.reset()
    restored_before = engine.restored_conversations
    chats = [[{"role": "system", "content": SYSTEM}] for _ in range(2 * engine.parallel)]
    ttft, evaluated = [], []
    for turn in range(turns):
        for number, messages in enumerate(chats):
            question = QUESTIONS[number % len(QUESTIONS)] if turn == 0 else TURNS[turn]
            messages.append({"role": "user", "content": question})
            reply = engine.chat(messages, max_tokens=tokens)
            messages.append({"role": "assistant", "content": reply.text})
            if turn:
                ttft.append(reply.ttft_s * 1000)
                evaluated.append(reply.prompt_tokens_evaluated)
    return {
        "conversations": len(chats),
        "sequences": engine.parallel,
        "later_turns": len(ttft),
        "ttft_ms_p50": round(percentile(ttft, 50), 1),
        "ttft_ms_p95": round(percentile(ttft, 95), 1),
        "evaluated_mean": round(statistics.mean(evaluated), 1),
        "restored": engine.restored_conversations - restored_before,
        "stored_mb": round(engine.stored.bytes / 1e6, 1),
    }


FORMATS = {
    "Q4_1": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_1,
    "Q4_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0,
    "Q4_K_M": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M,
}
"""Weight formats a bench requantizes to: SmolLM2's, the repacked x86 one, Gemma's."""


def requantized(source: Path, name: str, directory: Path) -> Path:
    """A copy of ``source`` in ``directory``, requantized by llama.cpp to the format ``name``."""
    target = directory / f"{source.stem}.requantized-{name}.gguf"
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype, params.nthread = FORMATS[name], 2
    params.allow_requantize = True
    if llama_cpp.llama_model_quantize(str(source).encode(), str(target).encode(), params) != 0:
        raise SystemExit(f"error: could not requantize {source} to {name}")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--profile", default="dev-x86-1core")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--per-client", type=int, default=PER_CLIENT, help="requests per client")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="throughput with prefix reuse on both sides, as an agent serves",
    )
    parser.add_argument("--q4-0", action="store_true", help="also measure a Q4_0 copy of each")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    source = Path("firmware-config/classes") / f"{args.profile}.yaml"
    profile = parse_profile(source.read_text(), source=str(source))
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="edgefleet-q4_0-") as scratch:
        models = list(args.models)
        if args.q4_0:
            models += [requantized(path, "Q4_0", Path(scratch)) for path in args.models]
        load = Workload(args.tokens, args.rounds, args.per_client, args.reuse)
        results = [bench_model(path, profile, load) for path in models]
    report = {
        "profile": profile.name,
        "load_1m_before": round(load_before, 2),
        "load_1m_after": round(os.getloadavg()[0], 2),
        "cores": os.cpu_count(),
        "results": results,
    }
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
