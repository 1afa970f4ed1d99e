"""Helpers for the daemon's tests: a chat API over a real runtime, an MQTT recorder."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from agent.chat.api import create_chat_app
from agent.chat.metrics import ServingMetrics
from agent.chat.server import ChatServer
from agent.config import load_settings
from agent.daemon import Agent
from agent.inference.batch import BatchEngine
from agent.models.serving import ModelHost, Serving
from shared.messages import ModelSource
from shared.strategies import Strategy


def load_serving(path: Path, *, model_id: str = "tiny", strategy: str = "direct") -> Serving:
    runtime = BatchEngine(path, parallel=2, threads=1, n_ctx=1024, seed=0, model_id=model_id)
    return Serving(runtime=runtime, model_id=model_id, path=path, strategy=Strategy.parse(strategy))


@contextmanager
def chat_server(
    host: ModelHost, metrics: ServingMetrics, *, token: str | None = None
) -> Iterator[ChatServer]:
    server = ChatServer(create_chat_app(host, metrics, token=token), "127.0.0.1", 0)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


class Recorder:
    """A subscriber that keeps every message it gets, decoded as JSON."""

    def __init__(
        self, port: int, topic: str, *, client_id: str = "recorder", persistent: bool = False
    ) -> None:
        self.messages: list[tuple[str, dict[str, Any], bool]] = []
        self.lock = threading.Lock()
        self.topic = topic
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=not persistent,
            protocol=paho.MQTTv311,
        )
        self.subscribed = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_args: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.connect_async("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        try:
            decoded = json.loads(message.payload)
        except ValueError:
            decoded = {"undecodable": message.payload.hex()}
        with self.lock:
            self.messages.append((message.topic, decoded, message.retain))

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        with self.lock:
            return [m for t, m, _ in self.messages if t.endswith("/" + kind)]

    def publish(self, topic: str, payload: bytes) -> None:
        assert self.subscribed.wait(10), "recorder did not connect"
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def agent_config(tmp_path: Path, broker_port: int, **overrides: Any) -> dict[str, Any]:
    """Settings for a test agent: private data dir, fast timers, no chat API unless asked."""
    config: dict[str, Any] = {
        "device_id": "dev-1",
        "device_class": "dev-x86-1core",
        "broker_url": f"mqtt://127.0.0.1:{broker_port}",
        "data_dir": str(tmp_path / "data"),
        "heartbeat_interval_s": 0.5,
        "metrics_interval_s": 0.5,
        "reconnect_min_s": 0.1,
        "reconnect_max_s": 0.5,
        "chat_enabled": False,
        "gpio_mock": True,
    }
    config.update(overrides)
    return config


def make_agent(tmp_path: Path, broker_port: int, **overrides: Any) -> Agent:
    """An in-process agent (not started) with :func:`agent_config` settings."""
    return Agent(load_settings(None, **agent_config(tmp_path, broker_port, **overrides)))


def write_config(tmp_path: Path, config: dict[str, Any]) -> Path:
    import yaml

    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def agent_process(config_path: Path, log_path: Path, *extra: str):
    """Start ``edgefleet agent run`` from this tree as a subprocess."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.Popen(
        [sys.executable, "-m", "shared.cli", *extra, "agent", "run", "--config", str(config_path)],
        env=env,
        stdout=log_path.open("ab"),
        stderr=subprocess.STDOUT,
        cwd=root,
    )


class _FileHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``FileServer.root`` with Range support; records each request."""

    protocol_version = "HTTP/1.1"
    server: _FileHTTPServer

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        files = self.server.files
        name = self.path.rsplit("/", 1)[-1]
        path = files.root / name
        files.requests.append((name, self.headers.get("Range")))
        files.headers.append(dict(self.headers))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start = 0
        range_header = self.headers.get("Range")
        if range_header:
            start = int(range_header.removeprefix("bytes=").split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        cut = files.cut_after.pop(name, None)
        body = data[start:] if cut is None else data[start:cut]
        self.wfile.write(body)
        if cut is not None:
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)


class _FileHTTPServer(http.server.ThreadingHTTPServer):
    files: FileServer


class FileServer:
    """A real HTTP server for model files with Range support (the registry is elsewhere).

    ``cut_after[name] = n`` makes the next full-file response stop after n bytes
    and drop the connection, like a network failure half-way.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[tuple[str, str | None]] = []
        self.headers: list[dict[str, str]] = []
        self.cut_after: dict[str, int] = {}
        self.httpd = _FileHTTPServer(("127.0.0.1", 0), _FileHandler)
        self.httpd.files = self
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def publish_model(
    registry: FileServer, path: Path, model_id: str, *, sha: str | None = None
) -> ModelSource:
    """Serve ``path`` from ``registry`` (a link, not a copy) and describe it as a source."""
    served = registry.root / path.name
    if not served.exists():
        served.symlink_to(path.resolve())
    real = hashlib.sha256(path.read_bytes()).hexdigest()
    return ModelSource(
        model_id=model_id,
        sha256=sha or real,
        url=f"{registry.url}/{path.name}",
        size_bytes=path.stat().st_size,
    )
