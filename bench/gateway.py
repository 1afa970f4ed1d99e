"""The gateway's cost and what it buys, on a fleet of real processes on this machine.

1. Overhead: time to first token and to the whole answer (streamed), the same request
   in turn straight to the device's chat API and through the controller's gateway, R
   rounds; p50 and p99 side by side. Two devices with the same model file under two ids:
   dev-1, which the gateway reaches over HTTP, and dev-nat, which advertises a chat URL
   nobody listens on, so the gateway reaches it over MQTT (each also called directly).
2. Requests per second through the gateway with 1 and then 2 devices (C concurrent
   clients, M requests each time).
3. Failover: the device is SIGKILLed just before a request; the time to the answer from
   the other one, and whether the gateway tried the dead one first (its failover counter)
   or already knew it was gone (its last will).

Usage (a tiny generated model by default, or any GGUF):

    PYTHONPATH=. python bench/gateway.py [--model PATH] [--rounds 40] [--requests 40]
"""

from __future__ import annotations

import argparse
import json
import re
import signal
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
from tests.support.ports import free_port  # noqa: E402

MODEL = "m-bench"
MODEL_NAT = "m-bench-nat"
"""The same file under another id, served by dev-nat alone: its requests go over MQTT."""
GATEWAY = {"max_inflight_per_device": 8, "requests_per_minute": 60000, "burst": 10000}
MESSAGES = [{"role": "user", "content": "Name three uses of water."}]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _streamed(
    url: str, headers: dict[str, str], max_tokens: int, model: str = MODEL
) -> tuple[float, float]:
    """Seconds to the first content chunk and to ``[DONE]``."""
    body = {"messages": MESSAGES, "max_tokens": max_tokens, "stream": True, "model": model}
    started = time.perf_counter()
    first = None
    with httpx.stream("POST", url, json=body, headers=headers, timeout=120) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if first is None and '"content": "' in line and '"content": ""' not in line:
                first = time.perf_counter() - started
    return first or float("nan"), time.perf_counter() - started


def overhead(fleet: Fleet, key: str, rounds: int, max_tokens: int) -> None:
    def direct(device: str) -> str:
        return f"http://127.0.0.1:{fleet.chat_ports[device]}/v1/chat/completions"

    gateway_url = f"{fleet.url}/v1/chat/completions"
    auth = {"Authorization": f"Bearer {key}"}
    paths = {
        "dev-1 direct": (direct("dev-1"), {}, MODEL),
        "dev-1 via gateway, HTTP": (gateway_url, auth, MODEL),
        "dev-nat direct": (direct("dev-nat"), {}, MODEL_NAT),
        "dev-nat via gateway, MQTT": (gateway_url, auth, MODEL_NAT),
    }
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in paths}
    for _ in range(3):  # warm every path
        for url, headers, model in paths.values():
            _streamed(url, headers, max_tokens, model)
    for _ in range(rounds):
        for name, (url, headers, model) in paths.items():
            samples[name].append(_streamed(url, headers, max_tokens, model))
    print(f"\n1. overhead, {rounds} rounds in turn, {max_tokens} tokens streamed")
    print("| path | TTFT p50 | TTFT p99 | whole p50 | whole p99 |")
    print("|---|---|---|---|---|")
    for name, rows in samples.items():
        ttft, whole = [r[0] * 1000 for r in rows], [r[1] * 1000 for r in rows]
        print(
            f"| {name} | {_pct(ttft, 0.5):.1f} ms | {_pct(ttft, 0.99):.1f} ms "
            f"| {_pct(whole, 0.5):.1f} ms | {_pct(whole, 0.99):.1f} ms |"
        )
    for device, via in (("dev-1", "HTTP"), ("dev-nat", "MQTT")):
        d = statistics.median(r[0] for r in samples[f"{device} direct"])
        g = statistics.median(r[0] for r in samples[f"{device} via gateway, {via}"])
        print(f"TTFT median, {via}: gateway +{(g - d) * 1000:.1f} ms, {g / d:.2f}x direct")


def throughput(fleet: Fleet, key: str, requests: int, clients: int, max_tokens: int) -> float:
    auth = {"Authorization": f"Bearer {key}"}
    body = {"messages": MESSAGES, "max_tokens": max_tokens, "model": MODEL}
    served: list[str] = []

    def one(_: int) -> None:
        answer = httpx.post(
            f"{fleet.url}/v1/chat/completions", json=body, headers=auth, timeout=300
        )
        answer.raise_for_status()
        served.append(answer.headers["X-Edgefleet-Device"])

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(requests)))
    elapsed = time.perf_counter() - started
    spread = {d: served.count(d) for d in sorted(set(served))}
    print(
        f"   {requests} requests, {clients} clients: {requests / elapsed:.2f} req/s, "
        f"by device {spread}"
    )
    return requests / elapsed


def _failovers(fleet: Fleet) -> float:
    text = fleet.api.get(fleet.url + "/metrics").text
    return sum(
        float(v) for v in re.findall(r"^edgefleet_gateway_failovers_total\{.*\} (\S+)$", text, re.M)
    )


def failover(fleet: Fleet, key: str, rounds: int, max_tokens: int) -> None:
    auth = {"Authorization": f"Bearer {key}"}
    body = {"messages": MESSAGES, "max_tokens": max_tokens, "model": MODEL}
    times, tried_dead = [], 0
    for _ in range(rounds):
        before = _failovers(fleet)
        agent = fleet.agents["dev-1"]
        agent.send_signal(signal.SIGKILL)
        agent.wait(10)
        started = time.perf_counter()
        answer = httpx.post(
            f"{fleet.url}/v1/chat/completions", json=body, headers=auth, timeout=120
        )
        times.append(time.perf_counter() - started)
        assert answer.status_code == 200 and answer.headers["X-Edgefleet-Device"] == "dev-2"
        tried_dead += _failovers(fleet) > before
        fleet.restart_agent("dev-1")
        fleet.wait(lambda: _serving(fleet) == {"dev-1", "dev-2"}, 60, "dev-1 back")
    ms = [t * 1000 for t in times]
    print(f"\n3. failover: dev-1 SIGKILLed just before each of {rounds} requests")
    print(f"   answered by dev-2 every time; p50 {_pct(ms, 0.5):.1f} ms, max {max(ms):.1f} ms;")
    print(f"   the gateway tried the dead device first in {tried_dead} of {rounds}")


def _serving(fleet: Fleet, model: str = MODEL) -> set[str]:
    items = fleet.api.get("/devices").json()["items"]
    return {d["id"] for d in items if d["status"] == "online" and d["model_id"] == model}


def _twin(model: Path, path: Path, *, generated: bool) -> Path:
    """The same weights as another file (the registry refuses one file under two ids).

    The generated model under another name; a given GGUF with zero bytes appended, which
    llama.cpp does not read (its tensors are located by offset).
    """
    if generated:
        return write_tiny_gguf(path, TinyModelSpec(name="tiny-nat"))
    path.write_bytes(model.read_bytes() + bytes(32))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, help="a GGUF (default: a tiny generated one)")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--failover-rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = args.model or write_tiny_gguf(root / "tiny.gguf")
        classes = root / "classes"
        write_profiles(classes)
        fleet = Fleet(root, classes, gateway=json.dumps(GATEWAY))
        with fleet:
            fleet.wait(fleet.healthy, 60, "the controller")
            fleet.upload_model(MODEL, model)
            key = fleet.api.post("/tokens", json={"name": "bench", "role": "client"}).json()[
                "token"
            ]
            twin = _twin(model, root / "nat.gguf", generated=args.model is None)
            fleet.upload_model(MODEL_NAT, twin)
            fleet.enroll({"dev-1": "e2e-big"})
            fleet.assign("dev-1", MODEL)
            fleet.wait(lambda: _serving(fleet) == {"dev-1"}, 60, "dev-1 serving")
            nowhere = f"http://127.0.0.1:{free_port()}"  # as a LAN address behind NAT
            fleet.enroll({"dev-nat": "e2e-big"}, chat_public_url=nowhere)
            fleet.assign("dev-nat", MODEL_NAT)
            fleet.wait(lambda: _serving(fleet, MODEL_NAT) == {"dev-nat"}, 60, "dev-nat serving")
            overhead(fleet, key, args.rounds, args.max_tokens)
            print("\n2. requests/s through the gateway")
            one = throughput(fleet, key, args.requests, args.clients, args.max_tokens)
            fleet.enroll({"dev-2": "e2e-big"})
            fleet.assign("dev-2", MODEL)
            fleet.wait(lambda: _serving(fleet) == {"dev-1", "dev-2"}, 60, "dev-2 serving")
            two = throughput(fleet, key, args.requests, args.clients, args.max_tokens)
            print(f"   2 devices / 1 device: {two / one:.2f}x")
            failover(fleet, key, args.failover_rounds, args.max_tokens)


if __name__ == "__main__":
    main()
