"""The status LED and button, on gpiozero's MockFactory pins."""

from __future__ import annotations

import time

import pytest
from gpiozero.pins.mock import MockFactory

from agent.gpio import PATTERNS, Activity, StatusLight
from shared.profiles import GpioPins
from tests.agent.daemon_support import wait_until

LED_PIN, BUTTON_PIN = 17, 27


@pytest.fixture
def factory():
    factory = MockFactory()
    yield factory
    factory.reset()


@pytest.fixture
def led(factory):
    """A status light on LED_PIN and that mock pin; closed after the test."""
    light = StatusLight(GpioPins(status_led=LED_PIN), pin_factory=factory)
    yield light, factory.pin(LED_PIN)
    light.close()


def _intervals(pin) -> list[tuple[bool, float]]:
    """(state, duration) of every complete interval in the pin's history.

    MockPin records each change with the time since the previous change, so the
    duration of a state is the timestamp of the change that ended it.
    """
    states = list(pin.states)
    pairs = zip(states, states[1:], strict=False)
    return [(bool(a.state), b.timestamp) for a, b in pairs]


def _show(light: StatusLight, pin, activity: Activity) -> None:
    """Switch to ``activity`` and forget the pin's earlier changes."""
    light.show(activity)
    pin.clear_states()


def _watch(light: StatusLight, pin, activity: Activity, seconds: float):
    _show(light, pin, activity)
    time.sleep(seconds)
    return _intervals(pin)


def test_idle_is_steady_on_and_serving_blinks_fast(led) -> None:
    light, pin = led
    _show(light, pin, Activity.IDLE)
    time.sleep(0.4)
    assert pin.state == 1 and len(pin.states) == 1  # no change while idle
    intervals = _watch(light, pin, Activity.SERVING, 0.8)
    assert len(intervals) >= 4  # 50 ms on / 50 ms off
    assert {state for state, _ in intervals} == {True, False}
    on_s, off_s = PATTERNS[Activity.SERVING]
    assert all(d >= (on_s if state else off_s) * 0.9 for state, d in intervals)


def test_error_pattern_has_long_on_phases(led) -> None:
    light, pin = led
    _show(light, pin, Activity.ERROR)
    time.sleep(2.5)
    on_s, off_s = PATTERNS[Activity.ERROR]
    intervals = _intervals(pin)
    ons = [d for state, d in intervals if state]
    offs = [d for state, d in intervals if not state]
    assert ons and offs, "the error pattern must switch off and on again"
    assert all(d >= on_s * 0.9 for d in ons)  # waits never end early
    assert all(d >= off_s * 0.9 for d in offs)
    assert len(intervals) <= 3  # 1.5 s on, 0.3 s off: at most on, off, on in 2.5 s


def test_identify_blinks_then_returns_to_the_activity(led) -> None:
    light, pin = led
    _show(light, pin, Activity.IDLE)
    light.identify(1.0)
    time.sleep(0.8)
    assert len(pin.states) >= 4
    assert wait_until(lambda: light._identify_timer is None, 5)
    time.sleep(0.2)
    pin.clear_states()
    time.sleep(0.3)
    assert pin.state == 1 and len(pin.states) == 1


def test_button_short_and_long_press(factory) -> None:
    calls: list[str] = []
    light = StatusLight(
        GpioPins(status_led=LED_PIN, button=BUTTON_PIN),
        pin_factory=factory,
        on_short_press=lambda: calls.append("short"),
        on_long_press=lambda: calls.append("long"),
        hold_s=0.3,
    )
    button = factory.pin(BUTTON_PIN)
    try:
        button.drive_low()
        time.sleep(0.05)
        button.drive_high()
        assert wait_until(lambda: calls == ["short"], 5)
        button.drive_low()
        assert wait_until(lambda: calls == ["short", "long"], 5)
        button.drive_high()
        time.sleep(0.1)
        assert calls == ["short", "long"]  # releasing after a hold is not a short press
    finally:
        light.close()


def test_no_pins_disables_the_light_cleanly() -> None:
    light = StatusLight(GpioPins(), mock=True)
    light.show(Activity.SERVING)
    light.identify(0.1)
    assert light.led is None and light.button is None
    light.close()
