"""Status LED and button (gpiozero); the only module that imports gpiozero.

The LED shows what the agent is doing, one pattern per activity; the button
re-announces the device (short press) or benchmarks the serving model (long
press). Off a Pi, or when configured, gpiozero's MockFactory stands in; a
profile without pins disables the light cleanly.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path

from gpiozero import LED, Button
from gpiozero.pins.mock import MockFactory

from shared.profiles import GpioPins

logger = logging.getLogger(__name__)
DEVICE_TREE_MODEL = Path("/proc/device-tree/model")


class Activity(StrEnum):
    """What the agent is busy with; the LED and the state message show it."""

    STARTING = "starting"
    IDLE = "idle"
    SERVING = "serving"
    BENCHMARKING = "benchmarking"
    DOWNLOADING = "downloading"
    ERROR = "error"


PATTERNS: dict[Activity, tuple[float, float] | None] = {
    Activity.STARTING: (0.1, 0.1),
    Activity.IDLE: None,
    Activity.SERVING: (0.05, 0.05),
    Activity.BENCHMARKING: (0.5, 0.5),
    Activity.DOWNLOADING: (0.2, 0.8),
    Activity.ERROR: (1.5, 0.3),
}
"""(on_s, off_s) blink per activity; None is steady on (idle: up and ready)."""
IDENTIFY_PATTERN = (0.05, 0.15)
LONG_PRESS_S = 2.0


def running_on_pi(model_file: Path = DEVICE_TREE_MODEL) -> bool:
    """True on a Raspberry Pi (its device tree names the model)."""
    try:
        return "raspberry pi" in model_file.read_text(errors="replace").lower()
    except OSError:
        return False


class StatusLight:
    """The status LED and the button; every method is a no-op when no pins are fitted."""

    def __init__(
        self,
        pins: GpioPins,
        *,
        mock: bool | None = None,
        on_short_press: Callable[[], None] | None = None,
        on_long_press: Callable[[], None] | None = None,
        hold_s: float = LONG_PRESS_S,
        pin_factory: object | None = None,
    ) -> None:
        use_mock = (not running_on_pi()) if mock is None else mock
        self.factory = pin_factory or (MockFactory() if use_mock else None)
        self.activity = Activity.STARTING
        self._lock = threading.Lock()
        self._identify_timer: threading.Timer | None = None
        self.led: LED | None = None
        if pins.status_led is not None:
            self.led = LED(pins.status_led, pin_factory=self.factory)
        self.button: Button | None = None
        if pins.button is not None:
            self.button = Button(pins.button, hold_time=hold_s, pin_factory=self.factory)
            self._was_held = False
            self.button.when_held = self._held
            self.button.when_released = self._released
        self._short, self._long = on_short_press, on_long_press
        if self.led is None and self.button is None:
            logger.info("no GPIO pins in the profile; status light disabled")
        self.show(Activity.STARTING)

    def show(self, activity: Activity) -> None:
        """Switch the LED to ``activity``'s pattern (unless identifying)."""
        with self._lock:
            self.activity = activity
            if self._identify_timer is None:
                self._apply(PATTERNS[activity])

    def identify(self, seconds: float) -> None:
        """Blink fast for ``seconds`` so a person can find the box, then resume."""
        with self._lock:
            if self._identify_timer is not None:
                self._identify_timer.cancel()
            self._apply(IDENTIFY_PATTERN)
            self._identify_timer = threading.Timer(seconds, self._end_identify)
            self._identify_timer.daemon = True
            self._identify_timer.start()

    def _end_identify(self) -> None:
        with self._lock:
            self._identify_timer = None
            self._apply(PATTERNS[self.activity])

    def _apply(self, pattern: tuple[float, float] | None) -> None:
        if self.led is None:
            return
        if pattern is None:
            self.led.on()
        else:
            self.led.blink(on_time=pattern[0], off_time=pattern[1], background=True)

    def _held(self) -> None:
        self._was_held = True
        self._fire(self._long, "long press")

    def _released(self) -> None:
        if not self._was_held:
            self._fire(self._short, "short press")
        self._was_held = False

    def _fire(self, action: Callable[[], None] | None, what: str) -> None:
        logger.info("button: %s", what)
        if action is None:
            return
        try:
            action()
        except Exception:  # noqa: BLE001 - a button handler must not kill gpiozero's thread
            logger.exception("button %s handler failed", what)

    def close(self) -> None:
        """Turn the LED off and release the pins."""
        with self._lock:
            if self._identify_timer is not None:
                self._identify_timer.cancel()
                self._identify_timer = None
        for device in (self.led, self.button):
            if device is not None:
                device.close()
