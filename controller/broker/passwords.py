"""MQTT passwords in Mosquitto's own hash format, so only hashes are ever stored.

Mosquitto 2 password files hold ``user:$7$<iterations>$<salt b64>$<hash b64>``:
PBKDF2-HMAC-SHA512 over the password with a 12-byte salt, 64-byte key. We
write the same format (checked against ``mosquitto_passwd`` in the tests), so
the controller can regenerate the password file from the database without
knowing any password.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

ITERATIONS = 101
"""Mosquitto's own default for ``$7$`` hashes (its broker reads any count)."""
SALT_BYTES = 12
KEY_BYTES = 64


def generate_password() -> str:
    """A random MQTT password (32 url-safe characters, ~190 bits)."""
    return secrets.token_urlsafe(24)


def hash_password(password: str, *, iterations: int = ITERATIONS, salt: bytes | None = None) -> str:
    """The Mosquitto ``$7$`` hash of ``password``."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    key = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, KEY_BYTES)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(key).decode()}"


def verify_password(password: str, hashed: str) -> bool:
    """Whether ``password`` matches a ``$7$`` hash (constant-time compare)."""
    parts = hashed.split("$")
    if len(parts) != 5 or parts[1] != "7":
        return False
    try:
        iterations, salt = int(parts[2]), base64.b64decode(parts[3])
    except ValueError:
        return False
    key = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, KEY_BYTES)
    return hmac.compare_digest(base64.b64encode(key).decode(), parts[4])
