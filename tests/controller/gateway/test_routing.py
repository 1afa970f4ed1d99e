"""Routing: the least expected wait first; devices at the gateway's bound set apart."""

from __future__ import annotations

import pytest

from controller.gateway.fleet_view import usable_chat_url
from controller.gateway.routing import UNMEASURED_LATENCY_MS, Route, rank, stick


def _route(device_id: str, latency_ms: float | None) -> Route:
    return Route(device_id, "m", f"http://127.0.0.1/{device_id}", latency_ms)


def test_the_shortest_queue_goes_first_and_latency_breaks_ties() -> None:
    fast, slow = _route("fast", 100), _route("slow", 2500)
    assert [r.device_id for r in rank([slow, fast], {}, max_inflight=4).open] == ["fast", "slow"]
    ranked = rank([slow, fast], {"fast": 1}, max_inflight=4)
    assert [r.device_id for r in ranked.open] == ["slow", "fast"]
    ranked = rank([slow, fast], {"fast": 1, "slow": 1}, max_inflight=4)
    assert [r.device_id for r in ranked.open] == ["fast", "slow"]


def test_a_device_measured_slow_once_still_gets_its_share() -> None:
    """A cold first answer must not keep a box idle (and so never measured again)."""
    warm, cold = _route("warm", 200), _route("cold", 5000)
    inflight: dict[str, int] = {}
    for _ in range(4):  # four concurrent requests: each goes to the shortest queue
        chosen = rank([warm, cold], inflight, max_inflight=8).open[0].device_id
        inflight[chosen] = inflight.get(chosen, 0) + 1
    assert inflight == {"warm": 2, "cold": 2}


def test_an_unmeasured_device_counts_as_fast_as_the_fastest_measured() -> None:
    ranked = rank([_route("known", 400), _route("new", None)], {"known": 0}, max_inflight=4)
    assert [r.device_id for r in ranked.open] == ["known", "new"]  # tie at 400 ms: by id
    ranked = rank([_route("known", 400), _route("new", None)], {"known": 1}, max_inflight=4)
    assert ranked.open[0].device_id == "new"
    ranked = rank([_route("known", 400), _route("new", None)], {"new": 1}, max_inflight=4)
    assert ranked.open[0].device_id == "known"


def test_devices_at_the_bound_are_full_and_say_how_long_to_wait() -> None:
    ranked = rank([_route("a", 1500), _route("b", 3000)], {"a": 2, "b": 2}, max_inflight=2)
    assert ranked.open == [] and {r.device_id for r in ranked.full} == {"a", "b"}
    assert ranked.retry_after_s() == pytest.approx(1.5)
    unmeasured = rank([_route("c", None)], {"c": 2}, max_inflight=2)
    assert unmeasured.retry_after_s() == pytest.approx(UNMEASURED_LATENCY_MS / 1000)


@pytest.mark.parametrize(
    ("reported", "usable"),
    [
        ("http://10.0.0.7:8080", "http://10.0.0.7:8080"),
        ("https://pi-1.lan:8443/", "https://pi-1.lan:8443"),
        ("http://user:pw@10.0.0.7:8080", None),
        ("file:///etc/passwd", None),
        ("http://10.0.0.7:8080/api/v1", None),
        ("http://10.0.0.7:8080?x=1", None),
        ("http://:8080", None),
        ("", None),
        (None, None),
    ],
)
def test_only_plain_http_base_urls_reported_by_devices_are_followed(
    reported: str | None, usable: str | None
) -> None:
    assert usable_chat_url(reported) == usable


def test_a_later_turn_goes_to_its_previous_device_while_it_has_room() -> None:
    idle, busy = _route("idle", 100), _route("busy", 100)
    ranked = rank([idle, busy], {"busy": 3}, max_inflight=4, prefer="busy")
    assert [r.device_id for r in ranked.open] == ["busy", "idle"]
    ranked = rank([idle, busy], {"busy": 4}, max_inflight=4, prefer="busy")
    assert [r.device_id for r in ranked.open] == ["idle"]  # at its bound: least loaded
    ranked = rank([idle], {}, max_inflight=4, prefer="busy")  # gone: least loaded
    assert [r.device_id for r in ranked.open] == ["idle"]


@pytest.mark.parametrize(
    ("previous", "inflight", "chosen", "outcome"),
    [
        ("a", {"a": 1}, "a", "hit"),
        ("a", {"a": 2}, "b", "full"),
        ("gone", {}, "a", "gone"),
        (None, {}, "a", "unknown"),
        ("a", {}, "b", "failed"),  # a had room, was tried, and did not answer
    ],
)
def test_a_later_turn_says_whether_it_stuck_and_why_not(
    previous: str | None, inflight: dict[str, int], chosen: str, outcome: str
) -> None:
    sticky = stick(previous, [_route("a", 100), _route("b", 100)], inflight, max_inflight=2)
    assert sticky.outcome(chosen) == outcome
