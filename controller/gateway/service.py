"""The gateway: admit a client's request, pick a device, fail over once, account the answer.

One instance per app (``create_app`` builds it). The count of requests open on each
device lives here, in this process: it is what makes the routing fair between requests
that arrive faster than devices report their metrics. So does the memory of which device
answered each conversation's last turn, where its next turn is cheapest.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import anyio
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from controller.gateway.accounting import GatewayAccounting, Served, strategy_of, usage_of
from controller.gateway.affinity import Affinity, answered_key, continued_key
from controller.gateway.auto_model import AutoModels
from controller.gateway.continuation import Continuations, Handover
from controller.gateway.escalation import Escalator
from controller.gateway.fleet_view import serving_routes
from controller.gateway.mqtt_upstream import LinkClient
from controller.gateway.ratelimit import RateLimiter
from controller.gateway.relay import Relay
from controller.gateway.routing import AutoChoice, Placement, Route, Sticky, rank, stick
from controller.gateway.settings import GatewaySettings
from controller.gateway.transport import Transports
from controller.gateway.upstream import (
    DeviceBusy,
    DeviceClient,
    DeviceFailed,
    RequestRefused,
    content_of,
    tag_device,
)
from shared.chat import ChatRequest

logger = logging.getLogger(__name__)

AUTO_MODEL = "auto"
"""``model: auto`` (or none): the served model best in the question's kind (``auto_model``)."""
MAX_FAILURES = 2
"""Devices tried that fail before the first token: the first, and one retry elsewhere."""
NO_DEVICE_RETRY_S = 10.0
"""``Retry-After`` when no device serves the model: a device coming online takes seconds."""

T = TypeVar("T")


class Refusal(Exception):
    """The gateway cannot answer: an HTTP status, a stable code, a reason, maybe a wait."""

    def __init__(
        self, status: int, code: str, detail: str, retry_after_s: float | None = None
    ) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail
        self.retry_after_s = retry_after_s


class Gateway:
    """Routes chat requests to devices and accounts each one."""

    def __init__(
        self,
        engine: Engine,
        settings: GatewaySettings,
        registry: CollectorRegistry,
        link: LinkClient | None = None,
    ) -> None:
        self.engine, self.settings = engine, settings
        self.limiter = RateLimiter(rate=settings.requests_per_minute / 60, burst=settings.burst)
        self.accounting = GatewayAccounting(registry)
        self.inflight: Counter[str] = Counter()
        self.devices = Transports(settings, DeviceClient(settings), link)
        self.affinity = Affinity(settings.sticky_conversations)
        self.escalator = Escalator(engine, settings.escalation, registry)
        self.auto = AutoModels(engine)
        self.continuations = Continuations(engine, self.devices, self.inflight, settings, registry)

    def admit(self, key: object) -> None:
        """Spend one request of the key's rate budget, or refuse with 429."""
        wait = self.limiter.take(key)
        if wait:
            self.accounting.outcome("rate_limited")
            raise Refusal(429, "rate_limited", "this key's request rate is used up", wait)

    async def models(self) -> list[str]:
        """Models some online device serves now."""
        routes = await anyio.to_thread.run_sync(serving_routes, self.engine, None)
        return sorted({r.model_id for r in routes})

    async def complete(
        self, request: ChatRequest, client: object
    ) -> tuple[dict[str, Any], Placement]:
        """A whole answer, from the conversation's last device or the least loaded one.

        If that device fails, one other is tried. An unsure answer may be escalated.
        """
        started = time.monotonic()
        routes, auto = await self._routes(request)
        sticky = self._sticky(request, client, routes)

        async def ask(routes: list[Route], request: ChatRequest) -> tuple[dict[str, Any], Route]:
            asked = time.monotonic()
            answer, route = await self._attempt(routes, request, self.devices.complete, sticky)
            self.inflight[route.device_id] -= 1
            elapsed = time.monotonic() - asked
            self._served(route, answer, ttft_s=elapsed, latency_s=elapsed)
            return answer, route

        first, first_route = await ask(routes, request)
        answer, route, escalation = await self.escalator.escalate(
            request, first, first_route, started, ask
        )
        self._remember(request, client, content_of(answer), route)
        tag_device(answer, route.device_id)
        if auto is not None:
            answer["edgefleet"]["auto"] = auto.extension()
        if escalation is not None:
            return answer, Placement(route, "escalated", escalation.from_device, auto=auto)
        return answer, self._placed(route, sticky, auto)

    async def stream(self, request: ChatRequest, client: object) -> tuple[Relay, Placement]:
        """An answer stream, committed to a device once its first token arrived."""
        started = time.monotonic()
        routes, auto = await self._routes(request)
        sticky = self._sticky(request, client, routes)
        stream, route = await self._attempt(routes, request, self.devices.stream, sticky)
        ttft_s = time.monotonic() - started

        def ended(final: dict[str, Any] | None, text: str, handover: Handover | None) -> None:
            self.inflight[route.device_id] -= 1
            if handover is not None:
                self._continued(request, client, final, text, handover, ttft_s, started)
            elif final is None:
                self.accounting.outcome("cut", route.device_id, route.model_id)
            else:
                self._served(route, final, ttft_s=ttft_s, latency_s=time.monotonic() - started)
                self._remember(request, client, text, route)

        async def hand_over(failed: Route, text: str, tokens: int) -> Handover | None:
            return await self.continuations.hand_over(request, failed, text, tokens)

        extension = {"auto": auto.extension()} if auto else {}
        relay = Relay(stream, on_end=ended, hand_over=hand_over, extension=extension)
        return relay, self._placed(route, sticky, auto)

    def _continued(
        self,
        request: ChatRequest,
        client: object,
        final: dict[str, Any] | None,
        text: str,
        handover: Handover,
        ttft_s: float,
        started: float,
    ) -> None:
        """Account an answer another device continued (see ``continuation``)."""
        if final is None:
            self.continuations.release(handover)
            self.accounting.outcome("cut", handover.route.device_id, handover.route.model_id)
            return
        latency_s = time.monotonic() - started
        strategy = strategy_of(final)
        self.continuations.account(
            self.accounting, handover, strategy, ttft_s=ttft_s, latency_s=latency_s
        )
        self._remember(request, client, text, handover.route)

    def _sticky(self, request: ChatRequest, client: object, routes: list[Route]) -> Sticky | None:
        """A later turn's tie to its previous device; None for a first turn."""
        key = continued_key(client, request.messages)
        if key is None:
            return None
        previous = self.affinity.device_for(key)
        limit = self.settings.max_inflight_per_device
        return stick(previous, routes, self.inflight, max_inflight=limit)

    def _remember(self, request: ChatRequest, client: object, answer: str, route: Route) -> None:
        self.affinity.remember(answered_key(client, request.messages, answer), route.device_id)

    def _placed(self, route: Route, sticky: Sticky | None, auto: AutoChoice | None) -> Placement:
        if sticky is None:
            return Placement(route, "least-loaded", auto=auto)
        outcome = sticky.outcome(route.device_id)
        self.accounting.sticky(outcome)
        return Placement(route, "sticky" if outcome == "hit" else f"fallback-{outcome}", auto=auto)

    async def _routes(self, request: ChatRequest) -> tuple[list[Route], AutoChoice | None]:
        """Devices serving the model asked for; for ``auto``, the model picked for the question."""
        model = request.model
        wanted = None if model in (None, "", AUTO_MODEL) else model
        routes = await anyio.to_thread.run_sync(serving_routes, self.engine, wanted)
        if not routes:
            self.accounting.outcome("no_device", model_id=wanted or "")
            what = f"model {wanted!r}" if wanted else "any model"
            raise Refusal(503, "no_device", f"no online device serves {what}", NO_DEVICE_RETRY_S)
        if wanted is not None:
            return routes, None
        return await self.auto.choose(request, routes, self.inflight)

    async def _attempt(
        self,
        routes: list[Route],
        request: ChatRequest,
        call: Callable[[Route, dict[str, Any]], Awaitable[T]],
        sticky: Sticky | None,
    ) -> tuple[T, Route]:
        """Try devices until one answers or two have failed: the previous turn's first.

        The previous turn's device goes first if it has room, then the least loaded. Loads
        are ranked afresh before each try (a failure may have taken seconds). A busy device
        is skipped; on success its open-request count stays raised, and the caller lowers it
        when the answer is complete.
        """
        tried: set[str] = set()
        failures, waits = 0, []
        while failures < MAX_FAILURES:
            untried = [r for r in routes if r.device_id not in tried]
            ranking = rank(
                untried,
                self.inflight,
                max_inflight=self.settings.max_inflight_per_device,
                prefer=sticky.previous if sticky else None,
            )
            if not ranking.open:
                waits.extend([ranking.retry_after_s()] if ranking.full else [])
                break
            route = ranking.open[0]
            tried.add(route.device_id)
            body = request.model_dump(exclude_none=True) | {"model": route.model_id}
            self.inflight[route.device_id] += 1
            try:
                return await call(route, body), route
            except BaseException as exc:
                self.inflight[route.device_id] -= 1
                if isinstance(exc, RequestRefused):
                    self.accounting.outcome("refused", route.device_id, route.model_id)
                    raise Refusal(exc.status, "refused", exc.detail) from None
                if isinstance(exc, DeviceBusy):
                    waits.append(exc.retry_after_s)
                    continue
                if not isinstance(exc, DeviceFailed):
                    raise
                failures += 1
                logger.warning("gateway: %s failed a request: %s", route.device_id, exc)
                self.accounting.failover(route.device_id)
        return self._give_up(failures, waits)

    def _give_up(self, failures: int, waits: list[float]) -> NoReturn:
        if waits and failures < MAX_FAILURES:
            self.accounting.outcome("busy")
            raise Refusal(429, "busy", "every device is busy", min(waits))
        self.accounting.outcome("failed")
        detail = f"{failures} device(s) failed before answering" if failures else "no device left"
        raise Refusal(502, "devices_failed", detail)

    def _served(
        self, route: Route, payload: dict[str, Any], *, ttft_s: float, latency_s: float
    ) -> None:
        prompt, completion = usage_of(payload)
        strategy = strategy_of(payload)
        self.accounting.served(
            Served(route.device_id, route.model_id, strategy, prompt, completion, ttft_s, latency_s)
        )

    async def aclose(self) -> None:
        """Close the connections to devices."""
        await self.devices.aclose()
