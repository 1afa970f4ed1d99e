"""Device logins for model downloads: the same MQTT credential the device enrolled with.

Agents fetch models with HTTP Basic ``device_id:password``. Checking a
Mosquitto PBKDF2 hash costs real CPU, and a resumed download makes many
requests, so a successful check is remembered briefly (keyed by a SHA-256 of
the pair, never the password itself); a rotated or revoked login stops
working within ``cache_ttl_s``.
"""

from __future__ import annotations

import hashlib
import threading
import time

from sqlalchemy import Engine
from sqlmodel import Session

from controller import crud
from controller.broker.passwords import verify_password


class DeviceCredentialCheck:
    """Verifies ``(device_id, password)`` against the device's active MQTT login."""

    def __init__(self, engine: Engine, *, cache_ttl_s: float = 30.0) -> None:
        self._engine = engine
        self._ttl = cache_ttl_s
        self._ok: dict[str, float] = {}
        self._lock = threading.Lock()

    def verify(self, device_id: str, password: str) -> bool:
        """True when ``password`` is the device's current MQTT password."""
        key = hashlib.sha256(f"{device_id}\0{password}".encode()).hexdigest()
        now = time.monotonic()
        with self._lock:
            seen = self._ok.get(key)
        if seen is not None and now - seen < self._ttl:
            return True
        with Session(self._engine) as session:
            credential = crud.active_mqtt_credential(session, device_id=device_id)
        if credential is None or not verify_password(password, credential.password_hash):
            return False
        with self._lock:
            if len(self._ok) > 10_000:
                self._ok.clear()
            self._ok[key] = now
        return True

    def forget(self) -> None:
        """Drop remembered checks (after a rotation or revocation in this process)."""
        with self._lock:
            self._ok.clear()
