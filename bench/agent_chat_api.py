"""What the local chat API adds to an answer: HTTP + queue + thread hop vs. calling the runtime.

Alternates a direct ``runtime.chat`` call and the same request through
``POST /v1/chat/completions`` (uvicorn on loopback) on one loaded model, one
thread, R rounds; reports medians side by side. Usage:

    PYTHONPATH=. python bench/agent_chat_api.py [MODEL.gguf] [--rounds 5] [--max-tokens 16]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import httpx

from agent.chat.api import create_chat_app
from agent.chat.metrics import ServingMetrics
from agent.chat.server import ChatServer
from agent.inference.runtime import ModelRuntime
from agent.models.serving import ModelHost, Serving
from shared.demo_models import DEMO_MODELS, models_dir

DEFAULT = models_dir() / DEMO_MODELS["smollm2-135m-instruct-q4_1"].filename
MESSAGES = [{"role": "user", "content": "Name three uses of water."}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=16)
    args = parser.parse_args()
    runtime = ModelRuntime(args.model, threads=1, n_ctx=512, seed=0)
    host = ModelHost()
    host.swap(Serving(runtime, runtime.model_id, args.model))
    server = ChatServer(create_chat_app(host, ServingMetrics()), "127.0.0.1", 0)
    server.start()
    direct, api = [], []
    request = {"messages": MESSAGES, "max_tokens": args.max_tokens, "temperature": 0}
    with httpx.Client(timeout=120) as client:
        for _ in range(args.rounds):
            runtime.reset()
            started = time.perf_counter()
            runtime.chat(MESSAGES, max_tokens=args.max_tokens)
            direct.append(time.perf_counter() - started)
            runtime.reset()
            started = time.perf_counter()
            client.post(f"{server.url}/v1/chat/completions", json=request).raise_for_status()
            api.append(time.perf_counter() - started)
    server.stop()
    host.close()
    d, a = statistics.median(direct) * 1000, statistics.median(api) * 1000
    print(f"model {runtime.model_id}, {args.max_tokens} tokens, {args.rounds} rounds, 1 thread")
    print(f"direct runtime.chat  median {d:8.1f} ms")
    print(f"through the chat API median {a:8.1f} ms  (+{a - d:.1f} ms, {a / d:.3f}x)")


if __name__ == "__main__":
    main()
