"""Reconnect policy of the MQTT link, free of paho: back-off and the protocol version choice."""

from __future__ import annotations

import logging
import random

logger = logging.getLogger(__name__)
UNSUPPORTED_PROTOCOL = 132
"""CONNACK reason (MQTT 5), also what paho reports for a 3.1.1 broker's return code 1."""


class Backoff:
    """Exponential reconnect delay with full jitter, reset after a good connect."""

    def __init__(self, minimum: float, maximum: float, rng: random.Random | None = None):
        self.minimum, self.maximum = minimum, maximum
        self.attempt = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        """The delay before the next attempt: uniform in [min, min * 2^attempt], capped."""
        ceiling = min(self.maximum, self.minimum * (2**self.attempt))
        self.attempt += 1
        return self._rng.uniform(self.minimum, max(self.minimum, ceiling))

    def reset(self) -> None:
        """Start again from the shortest delay."""
        self.attempt = 0


class ProtocolChoice:
    """Which MQTT version to connect with; under ``auto``, 5 first, 3.1.1 if the broker refuses.

    A refusal with "unsupported protocol version" or a connection the broker
    never answers (no CONNACK) switches versions, until one version has
    connected once: from then on it is kept for the life of the process.
    """

    def __init__(self, setting: str) -> None:
        self.setting = setting
        self.current = "3.1.1" if setting == "3.1.1" else "5"
        self.proven = False
        self._pending = False

    def refused(self, reason: int) -> bool:
        """A CONNACK refusal; True when it only means "try 3.1.1" (not a real refusal)."""
        if self.setting != "auto" or self.current != "5" or reason != UNSUPPORTED_PROTOCOL:
            return False
        self._pending = True
        return True

    def unanswered(self) -> None:
        """The broker accepted TCP but sent no CONNACK."""
        if self.setting == "auto" and not self.proven:
            self._pending = True

    def connected(self) -> None:
        """A successful CONNACK: keep this version."""
        self.proven = True

    def take_switch(self) -> bool:
        """Switch versions if one is due; True when the caller should rebuild its client."""
        if not self._pending:
            return False
        self._pending = False
        self.current = "3.1.1" if self.current == "5" else "5"
        logger.info("switching to MQTT %s", self.current)
        return True
