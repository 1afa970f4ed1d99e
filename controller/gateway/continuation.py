"""A streamed answer whose device failed mid-answer, continued by another device.

The client has seen part of the answer; a second answer would repeat it. So the
messages plus the text relayed so far go to another online device as a partial answer
to go on with (``continue_final_message``, which the devices' chat API accepts), and its
continuation follows on the same client stream. A device serving the same model first
(at temperature 0 it goes on as the failed one would have); else one serving another
model, named in the final chunk (``continued.model``). At most :data:`MAX_TRIES` devices
are asked; if none answers, the stream ends with an error event as before.

The failed device never reported its usage: its completion tokens are the answer chunks
it sent (a device streams one chunk per token), its prompt tokens the continuing
device's prompt less those (the continuation's prompt is the original plus the partial
answer); both are estimates, said so where they are reported.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import anyio
from prometheus_client import CollectorRegistry
from prometheus_client import Counter as PromCounter
from sqlalchemy import Engine

from controller.gateway.accounting import GatewayAccounting, Served, usage_of
from controller.gateway.fleet_view import serving_routes
from controller.gateway.routing import Route, rank
from controller.gateway.settings import GatewaySettings
from controller.gateway.transport import Transports
from controller.gateway.upstream import (
    DeviceBusy,
    DeviceFailed,
    DeviceStream,
    RequestRefused,
)
from shared.chat import ChatMessage, ChatRequest

logger = logging.getLogger(__name__)

MAX_TRIES = 2
"""Devices asked to continue one answer: the first, and one more if it fails too."""


@dataclass
class Handover:
    """A continuation under way: who failed, where, and the device going on with it."""

    stream: DeviceStream
    failed: Route
    at_chars: int
    relayed_tokens: int
    usage: dict[str, int] = field(default_factory=dict)
    """The continuing device's own usage, from its final chunk (empty until then)."""

    @property
    def route(self) -> Route:
        """The continuing device."""
        return self.stream.route

    def extension(self) -> dict[str, Any]:
        """The final chunk's ``edgefleet.continued``."""
        return {
            "from_device": self.failed.device_id,
            "to_device": self.route.device_id,
            "at_chars": self.at_chars,
            "model": self.route.model_id,
        }

    def merged_usage(self, final: dict[str, Any]) -> dict[str, int]:
        """The whole answer's usage for the client; keeps the device's own in :attr:`usage`."""
        prompt, completion = usage_of(final)
        self.usage = {"prompt_tokens": prompt, "completion_tokens": completion}
        original = max(0, prompt - self.relayed_tokens)
        total_completion = self.relayed_tokens + completion
        return {
            "prompt_tokens": original,
            "completion_tokens": total_completion,
            "total_tokens": original + total_completion,
        }


def continuation_request(request: ChatRequest, text: str, relayed_tokens: int) -> ChatRequest:
    """``request`` with ``text`` as the partial answer to continue, and the tokens left.

    A request that was itself a continuation has ``text`` added to its partial answer.
    Without a token limit the device's default applies to the continuation alone.
    """
    messages = list(request.messages)
    if request.continue_final_message:
        partial = messages.pop().as_dict()["content"]
        text = partial + text
    limit = request.max_completion_tokens or request.max_tokens
    return request.model_copy(
        update={
            "messages": [*messages, ChatMessage(role="assistant", content=text)],
            "continue_final_message": True,
            "strategy": None,
            "refine": None,
            "max_tokens": None if limit is None else max(1, limit - relayed_tokens),
            "max_completion_tokens": None,
        }
    )


class Continuations:
    """Finds a device to continue a cut answer; counts ``edgefleet_gateway_continuations``."""

    def __init__(
        self,
        engine: Engine,
        devices: Transports,
        inflight: Counter[str],
        settings: GatewaySettings,
        registry: CollectorRegistry,
    ) -> None:
        self.engine, self.devices, self.inflight, self.settings = (
            engine,
            devices,
            inflight,
            settings,
        )
        self.outcomes = PromCounter(
            "edgefleet_gateway_continuations",
            "Streamed answers whose device failed mid-answer: continued by a device serving "
            "the same model, by one serving another model, or not at all (none).",
            ["outcome"],
            registry=registry,
        )

    async def hand_over(
        self, request: ChatRequest, failed: Route, text: str, relayed_tokens: int
    ) -> Handover | None:
        """Another device's continuation of ``text``, read up to its first token; or None.

        On success the continuing device's open-request count stays raised until
        :meth:`account` (or :meth:`release`) lowers it.
        """
        body = continuation_request(request, text, relayed_tokens).model_dump(exclude_none=True)
        routes = await anyio.to_thread.run_sync(serving_routes, self.engine, None)
        others = [r for r in routes if r.device_id != failed.device_id]
        groups = (
            ("same_model", [r for r in others if r.model_id == failed.model_id]),
            ("other_model", [r for r in others if r.model_id != failed.model_id]),
        )
        limit = self.settings.max_inflight_per_device
        candidates = [
            (outcome, route)
            for outcome, group in groups
            for route in rank(group, self.inflight, max_inflight=limit).open
        ]
        for outcome, route in candidates[:MAX_TRIES]:
            self.inflight[route.device_id] += 1
            try:
                stream = await self.devices.stream(route, body | {"model": route.model_id})
            except (DeviceFailed, DeviceBusy, RequestRefused) as exc:
                self.inflight[route.device_id] -= 1
                logger.warning("gateway: %s could not continue: %s", route.device_id, exc)
                continue
            except BaseException:
                self.inflight[route.device_id] -= 1
                raise
            self.outcomes.labels(outcome).inc()
            return Handover(stream, failed, len(text), relayed_tokens)
        self.outcomes.labels("none").inc()
        return None

    def release(self, handover: Handover) -> None:
        """The continuation ended without its final chunk: its device is free again."""
        self.inflight[handover.route.device_id] -= 1

    def account(
        self,
        accounting: GatewayAccounting,
        handover: Handover,
        strategy: str,
        *,
        ttft_s: float,
        latency_s: float,
    ) -> None:
        """Count the answer under the continuing device, and the failed one's share (estimated)."""
        self.release(handover)
        continuing, failed = handover.route, handover.failed
        prompt = handover.usage.get("prompt_tokens", 0)
        completion = handover.usage.get("completion_tokens", 0)
        accounting.served(
            Served(
                continuing.device_id,
                continuing.model_id,
                strategy,
                prompt,
                completion,
                ttft_s,
                latency_s,
            )
        )
        labels = (failed.device_id, failed.model_id, strategy)
        accounting.tokens.labels("prompt", *labels).inc(max(0, prompt - handover.relayed_tokens))
        accounting.tokens.labels("completion", *labels).inc(handover.relayed_tokens)
