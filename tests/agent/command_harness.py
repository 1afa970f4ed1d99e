"""An in-process agent with its chat API on, a recorder on its topics, and a way to command it."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx

from agent.config import load_settings
from agent.daemon import Agent
from shared.messages import CmdBody, encode, make_envelope
from shared.topics import Topics
from tests.agent.daemon_support import Recorder, agent_config, wait_until, write_config

TOPICS = Topics()


class Harness:
    """An agent, a recorder on its topics and a way to send commands."""

    def __init__(self, broker, tmp_path: Path, tiny: Path, **overrides) -> None:
        self.device = f"dev-{uuid.uuid4().hex[:8]}"
        settings = {
            "device_id": self.device,
            "chat_enabled": True,
            "chat_port": 0,
            "initial_model": str(tiny),
            "heartbeat_interval_s": 5,
            "metrics_interval_s": 5,
            **overrides,
        }
        self.config = agent_config(tmp_path, broker.port, **settings)
        self.config_path = write_config(tmp_path, self.config)
        settings = load_settings(self.config_path)
        self.recorder = Recorder(
            broker.port, TOPICS.device_namespace(self.device), client_id=f"rec-{self.device}"
        )
        self.agent = Agent(settings, config_path=self.config_path)
        self.agent.start()
        assert self.agent.link.wait_connected(20)
        assert wait_until(lambda: self.recorder.of_kind("hello"))

    def send(self, command) -> None:
        payload = encode(make_envelope(self.device, 1, CmdBody(command=command)))
        self.recorder.publish(TOPICS.device(self.device, "cmd"), payload)

    def acks(self, command_id: str) -> list[dict]:
        return [
            m["body"] for m in self.recorder.of_kind("ack") if m["body"]["command_id"] == command_id
        ]

    def final_ack(self, command_id: str, timeout: float = 60) -> dict:
        assert wait_until(
            lambda: any(a["status"] != "accepted" for a in self.acks(command_id)), timeout
        ), self.acks(command_id)
        return next(a for a in self.acks(command_id) if a["status"] != "accepted")

    def chat(self) -> httpx.Response:
        return httpx.post(
            f"{self.agent.chat.url}/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "what is water"}], "max_tokens": 4},
            timeout=60,
        )

    def close(self) -> None:
        self.agent.stop()
        self.recorder.close()
