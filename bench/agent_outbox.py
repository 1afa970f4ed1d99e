"""What the on-disk outbox costs: QoS 1 publishing through it vs. straight from paho.

Both paths publish N metrics-sized messages to a private Mosquitto on loopback
and wait for every PUBACK; they alternate, R rounds, in one run (the machine is
noisy, so only the ratio measured side by side means much). Usage:

    python bench/agent_outbox.py [--messages 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from agent.config import AgentSettings
from agent.link.messenger import Messenger
from agent.link.mqtt import MqttLink
from agent.link.outbox import Outbox
from shared.messages import MetricsBody, encode, make_envelope
from shared.topics import Topics

BODY = MetricsBody(
    window_s=60,
    model_id="smollm2",
    requests=3,
    generated_tokens=300,
    latency_ms_p50=2100.5,
    latency_ms_p95=4100.25,
)


def start_broker(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = workdir / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        "max_queued_messages 100000\n"
    )
    process = subprocess.Popen(
        [shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(config)],
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), 0.1).close()
            return process, port
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("mosquitto did not start")


def direct(port: int, n: int) -> float:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-direct")
    client.connect("127.0.0.1", port)
    client.loop_start()
    topic = Topics().device("bench", "metrics")
    started = time.perf_counter()
    infos = [
        client.publish(topic, encode(make_envelope("bench", i, BODY)), qos=1) for i in range(n)
    ]
    for info in infos:
        info.wait_for_publish(30)
    elapsed = time.perf_counter() - started
    client.loop_stop()
    client.disconnect()
    return elapsed


def through_outbox(port: int, n: int, workdir: Path) -> tuple[float, float]:
    """(seconds to enqueue all, seconds until the broker acknowledged all)."""
    settings = AgentSettings(
        device_id="bench",
        broker_url=f"mqtt://127.0.0.1:{port}",
        data_dir=workdir,
        outbox_max_messages=n + 10,
    )
    outbox = Outbox(workdir / f"bench-{time.monotonic_ns()}.db", max_messages=n + 10)
    messenger = Messenger("bench", outbox, Topics())
    link = MqttLink(settings, outbox, on_command=lambda e: None, will_payload=lambda: b"{}")
    link.start()
    link.wait_connected(10)
    started = time.perf_counter()
    for _ in range(n):
        messenger.send(BODY)
    enqueued = time.perf_counter() - started
    while outbox.depth():
        time.sleep(0.002)
    elapsed = time.perf_counter() - started
    link.stop(None, flush_s=0)
    outbox.close()
    return enqueued, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        broker, port = start_broker(Path(tmp))
        try:
            rows = []
            for _ in range(args.rounds):
                d = direct(port, args.messages)
                e, o = through_outbox(port, args.messages, Path(tmp))
                rows.append((d, e, o))
        finally:
            broker.terminate()
            broker.wait()
    n = args.messages
    for d, e, o in rows:
        print(
            f"direct {n / d:8.0f} msg/s | outbox enqueue {n / e:8.0f} msg/s, "
            f"end-to-end {n / o:8.0f} msg/s | outbox/direct time {o / d:5.2f}x"
        )
    ratio = statistics.median(o / d for d, _, o in rows)
    print(
        f"median: outbox end-to-end takes {ratio:.2f}x the time of direct QoS 1 publishing; "
        f"{1e6 * statistics.median(e for _, e, _ in rows) / n:.0f} us per enqueued message"
    )


if __name__ == "__main__":
    main()
