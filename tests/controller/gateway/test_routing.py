"""Routing: the least expected wait first; devices at the gateway's bound set apart."""

from __future__ import annotations

import pytest

from controller.gateway.fleet_view import usable_chat_url
from controller.gateway.routing import UNMEASURED_LATENCY_MS, Route, rank


def _route(device_id: str, latency_ms: float | None) -> Route:
    return Route(device_id, "m", f"http://127.0.0.1/{device_id}", latency_ms)


def test_an_idle_slow_device_beats_a_fast_one_with_a_queue() -> None:
    fast, slow = _route("fast", 100), _route("slow", 250)
    assert [r.device_id for r in rank([slow, fast], {}, max_inflight=4).open] == ["fast", "slow"]
    # fast: (2 open + 1) x 100 ms = 300 ms expected, slow: 1 x 250 ms
    ranked = rank([slow, fast], {"fast": 2}, max_inflight=4)
    assert [r.device_id for r in ranked.open] == ["slow", "fast"]


def test_an_unmeasured_device_counts_as_fast_as_the_fastest_measured() -> None:
    ranked = rank([_route("known", 400), _route("new", None)], {"known": 0}, max_inflight=4)
    assert [r.device_id for r in ranked.open] == ["known", "new"]  # tie at 400 ms: by id
    ranked = rank([_route("known", 400), _route("new", None)], {"known": 1}, max_inflight=4)
    assert ranked.open[0].device_id == "new"


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
