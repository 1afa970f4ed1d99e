"""Sticky conversations through the gateway: later turns' time to first token, on vs off.

A fleet of real processes on this machine (``controller run``, two ``agent run`` with two
sequences each): C conversations at once, T turns each, streamed through the gateway,
first with ``gateway.sticky_conversations`` at its default, then at 0 (least loaded
only), alternating for R repeats. Per mode: TTFT p50 of turns 2..T, and how many of those
turns the device of the previous turn answered (it holds the conversation's prefix).

Usage (a tiny generated model by default, or any GGUF):

    PYTHONPATH=. python bench/gateway_sticky.py [--model PATH] [--conversations 4] [--turns 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.engine.tiny_gguf import TinyModelSpec, write_tiny_gguf  # noqa: E402
from tests.factories.profiles import write_profiles  # noqa: E402
from tests.support.fleet import Fleet  # noqa: E402

MODEL = "m-bench"
DEVICES = {"dev-1": "e2e-big", "dev-2": "e2e-big"}
LIMITS = {"max_inflight_per_device": 4, "requests_per_minute": 60000, "burst": 10000}
SYSTEM = "You are the assistant of a rural clinic. " * 20
"""A system prompt of some length, as deployments use: the prefix a kept slot saves."""


def _turn(
    url: str, auth: dict[str, str], history: list[dict[str, str]], max_tokens: int
) -> tuple[float, str]:
    """Stream one turn; append the answer to ``history``; seconds to first token, device."""
    body = {"model": MODEL, "messages": history, "max_tokens": max_tokens, "stream": True}
    started, first, pieces = time.perf_counter(), None, []
    with httpx.stream("POST", url, json=body, headers=auth, timeout=300) as response:
        response.raise_for_status()
        device = response.headers["X-Edgefleet-Device"]
        for line in response.iter_lines():
            if not line.startswith("data: {"):
                continue
            choices = json.loads(line[6:]).get("choices") or [{}]
            piece = (choices[0].get("delta") or {}).get("content")
            if piece:
                first = first or time.perf_counter() - started
                pieces.append(piece)
    history.append({"role": "assistant", "content": "".join(pieces)})
    return first or float("nan"), device


def run(model: Path, root: Path, sticky: int, args: argparse.Namespace) -> tuple[list[float], int]:
    """TTFTs of later turns and how many went to the previous turn's device."""
    classes = root / "classes"
    write_profiles(classes, parallel=2)
    gateway = json.dumps({**LIMITS, "sticky_conversations": sticky})
    with Fleet(root, classes, gateway=gateway) as fleet:
        fleet.wait(fleet.healthy, 60, "the controller")
        fleet.upload_model(MODEL, model)
        key = fleet.api.post("/tokens", json={"name": "bench", "role": "client"}).json()["token"]
        fleet.enroll(DEVICES)
        for device_id in DEVICES:
            fleet.assign(device_id, MODEL)
        fleet.wait(lambda: fleet.serving(MODEL) == set(DEVICES), 60, "both serving")
        url, auth = f"{fleet.url}/v1/chat/completions", {"Authorization": f"Bearer {key}"}

        def conversation(n: int) -> list[tuple[float, bool]]:
            history = [{"role": "system", "content": SYSTEM}]
            later, previous = [], None
            for turn in range(args.turns):
                history.append({"role": "user", "content": f"Question {turn} of visit {n}?"})
                ttft, device = _turn(url, auth, history, args.max_tokens)
                if previous is not None:
                    later.append((ttft, device == previous))
                previous = device
            return later

        with ThreadPoolExecutor(args.conversations) as pool:
            turns = [t for c in pool.map(conversation, range(args.conversations)) for t in c]
    return [t for t, _ in turns], sum(same for _, same in turns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, help="a GGUF (default: a tiny generated one)")
    parser.add_argument("--conversations", type=int, default=4)
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    results: dict[str, tuple[list[float], int]] = {"on": ([], 0), "off": ([], 0)}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        spec = TinyModelSpec(n_embd=512, n_layers=8, n_ff=1024)
        model = args.model or write_tiny_gguf(root / "tiny.gguf", spec)
        for repeat in range(args.repeats):
            for mode, size in (("on", 10_000), ("off", 0)):
                ttfts, same = run(model, root / f"{mode}-{repeat}", size, args)
                results[mode] = (results[mode][0] + ttfts, results[mode][1] + same)
    print(f"{args.conversations} conversations at once, {args.turns} turns, two devices")
    print("| sticky | later turns | on the previous turn's device | TTFT p50 | TTFT mean |")
    print("|---|---|---|---|---|")
    for mode, (ttfts, same) in results.items():
        ms = [t * 1000 for t in ttfts]
        print(
            f"| {mode} | {len(ms)} | {same} | {statistics.median(ms):.1f} ms "
            f"| {statistics.fmean(ms):.1f} ms |"
        )
    on, off = (statistics.median(results[m][0]) for m in ("on", "off"))
    print(f"TTFT p50 of later turns, on / off: {on / off:.2f}")


if __name__ == "__main__":
    main()
