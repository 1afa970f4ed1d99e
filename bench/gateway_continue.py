"""How long a client waits when its streaming device dies mid-answer and another continues.

A fleet of real processes on this machine (``controller run``, two ``agent run``, one
llama.cpp thread each, a tiny generated model of the e2e tests' shape). Each round streams
a long answer through the gateway, SIGKILLs the answering device once the client has read
its first piece, and records when each piece arrived. Afterwards the final chunk says
where the answer was continued (``edgefleet.continued.at_chars``); the continuation time
is from the kill to the first piece past that point (the dead socket noticed, the routes
read, the other device's prefill of prompt + partial answer, its first token). For scale,
the time to the first token of a fresh request on the surviving device in the same run.
Each stitched answer is also compared with the uncut answer the same request gets.

Usage:

    PYTHONPATH=. python bench/gateway_continue.py [--rounds 5] [--max-tokens 512]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.engine.tiny_gguf import TinyModelSpec, write_tiny_gguf  # noqa: E402
from tests.factories.profiles import write_profiles  # noqa: E402
from tests.support.fleet import Fleet  # noqa: E402

MODEL = "m-bench"
DEVICES = ("dev-1", "dev-2")
SHAPE = TinyModelSpec(name=MODEL, n_embd=512, n_layers=8, n_ff=1024)
GATEWAY = {"requests_per_minute": 60000, "burst": 10000}
MESSAGES = [{"role": "user", "content": "Tell me a story"}]


def _piece(data: dict[str, Any]) -> str:
    choices = data.get("choices") or [{}]
    return (choices[0].get("delta") or {}).get("content") or ""


def one_round(fleet: Fleet, auth: dict[str, str], max_tokens: int) -> tuple[float, str, dict]:
    """Seconds from the kill to the continuation's first piece; the text; the final chunk."""
    body = {"messages": MESSAGES, "max_tokens": max_tokens, "stream": True, "model": MODEL}
    arrivals: list[tuple[float, str]] = []
    final: dict[str, Any] = {}
    killed_at = 0.0
    url = f"{fleet.url}/v1/chat/completions"
    with httpx.stream("POST", url, json=body, headers=auth, timeout=120) as response:
        response.raise_for_status()
        answering = response.headers["X-Edgefleet-Device"]
        for line in response.iter_lines():
            if not line.startswith("data: {"):
                continue
            data = json.loads(line[6:])
            arrivals.append((time.perf_counter(), _piece(data)))
            final = data if "edgefleet" in data else final
            if not killed_at and _piece(data):
                fleet.agents[answering].send_signal(signal.SIGKILL)
                killed_at = time.perf_counter()
    fleet.agents[answering].wait(10)
    fleet.restart_agent(answering)
    at, sent = final["edgefleet"]["continued"]["at_chars"], 0
    for arrived, piece in arrivals:
        if sent >= at and piece:
            return arrived - killed_at, "".join(p for _, p in arrivals), final
        sent += len(piece)
    raise AssertionError("no piece after the continuation point")


def _ttft(fleet: Fleet, auth: dict[str, str]) -> float:
    body = {"messages": MESSAGES, "max_tokens": 4, "stream": True, "model": MODEL}
    started = time.perf_counter()
    url = f"{fleet.url}/v1/chat/completions"
    with httpx.stream("POST", url, json=body, headers=auth, timeout=120) as response:
        for line in response.iter_lines():
            if line.startswith("data: {") and _piece(json.loads(line[6:])):
                return time.perf_counter() - started
    raise AssertionError("no first token")


def _serving(fleet: Fleet) -> set[str]:
    items = fleet.api.get("/devices").json()["items"]
    return {d["id"] for d in items if d["status"] == "online" and d["model_id"] == MODEL}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=512)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        classes = root / "classes"
        write_profiles(classes)
        fleet = Fleet(root, classes, gateway=json.dumps(GATEWAY))
        with fleet:
            fleet.wait(fleet.healthy, 60, "the controller")
            fleet.upload_model(MODEL, write_tiny_gguf(root / "tiny.gguf", SHAPE))
            token = fleet.api.post("/tokens", json={"name": "bench", "role": "client"})
            auth = {"Authorization": f"Bearer {token.json()['token']}"}
            fleet.enroll(dict.fromkeys(DEVICES, "e2e-big"))
            for device_id in DEVICES:
                fleet.assign(device_id, MODEL)
            fleet.wait(lambda: _serving(fleet) == set(DEVICES), 90, "both serving")
            whole = {"messages": MESSAGES, "max_tokens": args.max_tokens, "model": MODEL}
            uncut = httpx.post(
                f"{fleet.url}/v1/chat/completions", json=whole, headers=auth, timeout=300
            ).json()["choices"][0]["message"]["content"]
            gaps, ttfts, same, agree = [], [], 0, []
            for _ in range(args.rounds):
                fleet.wait(lambda: _serving(fleet) == set(DEVICES), 90, "both serving")
                ttfts.append(_ttft(fleet, auth))
                gap, text, final = one_round(fleet, auth, args.max_tokens)
                gaps.append(gap)
                same += text == uncut
                agree.append(len(os.path.commonprefix([text, uncut])))
                print(
                    f"  continued at {final['edgefleet']['continued']['at_chars']} chars "
                    f"after {gap * 1000:.0f} ms; same as uncut: {text == uncut}"
                )
    print(f"\n{args.rounds} kills mid-answer, {args.max_tokens}-token answers:")
    print(
        f"  kill -> continuation's first piece: p50 {statistics.median(gaps) * 1000:.0f} ms, "
        f"max {max(gaps) * 1000:.0f} ms"
    )
    print(f"  a fresh request's TTFT in the same run: p50 {statistics.median(ttfts) * 1000:.0f} ms")
    print(f"  stitched answer identical to the uncut one: {same} of {args.rounds};")
    print(f"  characters they share from the start: {agree} (uncut: {len(uncut)})")


if __name__ == "__main__":
    main()
