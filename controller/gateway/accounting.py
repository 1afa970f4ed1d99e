"""Every gateway request counted in the controller's ``/metrics``: who answered, tokens, time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

LATENCY_BUCKETS_S = (0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300)


@dataclass(frozen=True)
class Served:
    """One answered request, as the gateway saw it."""

    device_id: str
    model_id: str
    strategy: str
    prompt_tokens: int
    completion_tokens: int
    ttft_s: float
    latency_s: float


class GatewayAccounting:
    """The gateway's Prometheus series, registered in the app's own registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        served = ["device", "model", "strategy"]
        self.requests = Counter(
            "edgefleet_gateway_requests",
            "Chat requests through the gateway, by outcome (ok, busy, failed, refused, cut, "
            "rate_limited, no_device) and the device that answered (empty: none).",
            ["outcome", "device", "model"],
            registry=registry,
        )
        self.tokens = Counter(
            "edgefleet_gateway_tokens",
            "Tokens of answered gateway requests: prompt and completion.",
            ["kind", *served],
            registry=registry,
        )
        self.latency = Histogram(
            "edgefleet_gateway_latency_seconds",
            "End-to-end time of answered gateway requests, as the gateway measured it.",
            served,
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.ttft = Histogram(
            "edgefleet_gateway_ttft_seconds",
            "Time to the first token (the whole answer, unstreamed) through the gateway.",
            served,
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.failovers = Counter(
            "edgefleet_gateway_failovers",
            "Devices that failed a request before its first token, which went elsewhere.",
            ["device"],
            registry=registry,
        )

        self.stickiness = Counter(
            "edgefleet_gateway_sticky",
            "Later turns of a conversation: sent to the device of its previous turn (hit), or "
            "not, because it was unknown, gone, full or failed.",
            ["result"],
            registry=registry,
        )

    def served(self, answer: Served) -> None:
        """Count an answered request."""
        labels = (answer.device_id, answer.model_id, answer.strategy)
        self.requests.labels("ok", answer.device_id, answer.model_id).inc()
        self.tokens.labels("prompt", *labels).inc(answer.prompt_tokens)
        self.tokens.labels("completion", *labels).inc(answer.completion_tokens)
        self.latency.labels(*labels).observe(answer.latency_s)
        self.ttft.labels(*labels).observe(answer.ttft_s)

    def failover(self, device_id: str) -> None:
        """Count a device that failed a request before its first token."""
        self.failovers.labels(device_id).inc()

    def sticky(self, result: str) -> None:
        """Count a later turn of a conversation: ``hit``, or why it went elsewhere."""
        self.stickiness.labels(result).inc()

    def outcome(self, outcome: str, device_id: str = "", model_id: str = "") -> None:
        """Count a request that was not answered (or was cut), and why."""
        self.requests.labels(outcome, device_id, model_id).inc()


def usage_of(payload: dict[str, Any]) -> tuple[int, int]:
    """Prompt and completion tokens from an OpenAI ``usage`` object (0 when absent)."""
    usage = payload.get("usage")
    if not isinstance(usage, dict):
        return 0, 0
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    return (
        prompt if isinstance(prompt, int) else 0,
        completion if isinstance(completion, int) else 0,
    )


def strategy_of(payload: dict[str, Any]) -> str:
    """The strategy the device served with, from its ``edgefleet`` extension."""
    extension = payload.get("edgefleet")
    strategy = extension.get("strategy") if isinstance(extension, dict) else None
    return strategy if isinstance(strategy, str) else "unknown"
