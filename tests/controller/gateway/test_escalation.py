"""Which answers escalate, and to which devices (the pure parts of the gateway's escalation)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from sqlalchemy import create_engine

from controller.gateway.escalation import (
    EscalationSettings,
    Escalator,
    confidence_of,
    escalated_request,
    stronger_routes,
)
from controller.gateway.routing import Route
from shared.chat import ChatRequest

STRENGTHS = {"small": 0.4, "mid": 0.6, "big": 0.9}


def _route(device: str, model: str, latency_ms: float | None = 500.0) -> Route:
    return Route(device, model, f"http://{device}:8080", latency_ms)


def test_the_strongest_fitting_model_is_chosen_and_nothing_weaker() -> None:
    routes = [_route("a", "small"), _route("b", "mid"), _route("c", "big"), _route("d", "big")]
    assert [
        r.device_id for r in stronger_routes(routes, "small", STRENGTHS, budget_left_ms=None)
    ] == ["c", "d"]
    assert stronger_routes(routes, "big", STRENGTHS, budget_left_ms=None) == []
    assert stronger_routes(routes, "unscored", STRENGTHS, budget_left_ms=None) == []


def test_the_latency_budget_leaves_out_slow_and_unmeasured_devices() -> None:
    routes = [_route("b", "mid", 300.0), _route("c", "big", 2000.0), _route("d", "big", None)]
    fits = stronger_routes(routes, "small", STRENGTHS, budget_left_ms=1000.0)
    assert [r.device_id for r in fits] == ["b"]
    assert stronger_routes(routes, "small", STRENGTHS, budget_left_ms=100.0) == []


def test_only_a_number_in_range_is_a_confidence() -> None:
    assert confidence_of({"edgefleet": {"confidence": 0.5}}) == 0.5
    for bad in (
        {},
        {"edgefleet": None},
        {"edgefleet": {"confidence": True}},
        {"edgefleet": {"confidence": 1.5}},
        {"edgefleet": {"confidence": "0.1"}},
    ):
        assert confidence_of(bad) is None


def test_an_answer_escalates_only_when_allowed_asked_and_below_the_threshold() -> None:
    engine = create_engine("sqlite://")
    on = Escalator(engine, EscalationSettings(enabled=True, threshold=0.6), CollectorRegistry())
    off = Escalator(engine, EscalationSettings(threshold=0.6), CollectorRegistry())
    asks = ChatRequest(messages=[{"role": "user", "content": "hi"}], escalate=True)
    plain = ChatRequest(messages=[{"role": "user", "content": "hi"}])
    unsure, sure = {"edgefleet": {"confidence": 0.5}}, {"edgefleet": {"confidence": 0.6}}
    assert on.confidence(asks, unsure) == 0.5
    assert on.confidence(asks, sure) is None
    assert on.confidence(plain, unsure) is None
    assert off.confidence(asks, unsure) is None
    assert on.confidence(asks, {"edgefleet": {}}) is None  # an older agent: no confidence
    on.set_threshold(None)
    assert on.confidence(asks, unsure) is None and on.source == "operator"
    calibrating = Escalator(
        engine, EscalationSettings(enabled=True, calibrated=True), CollectorRegistry()
    )
    assert calibrating.confidence(asks, sure) == 0.6  # the pair's threshold decides later


def test_the_stronger_device_gets_its_own_strategy_and_no_second_escalation() -> None:
    request = ChatRequest(
        messages=[{"role": "user", "content": "hi"}], strategy="vote:3", escalate=True
    )
    again = escalated_request(request)
    assert again.strategy is None and again.refine is None and again.escalate is False
    assert again.messages == request.messages
