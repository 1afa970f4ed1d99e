"""API tokens: generation, hashing, constant-time checks and roles.

A token is shown to its owner once, at creation; the database keeps only its
SHA-256 (tokens are 256-bit random, so a fast hash is enough: there is nothing
to brute-force). Lookups go by hash and the match is confirmed with
``hmac.compare_digest`` so no comparison leaks timing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from enum import StrEnum

TOKEN_PREFIX = "eft_"
"""Marks edgefleet API tokens, so secret scanners and people can recognise one."""

MIN_TOKEN_CHARS = 24
"""Shortest token accepted from the environment for the bootstrap admin."""


class Role(StrEnum):
    """What a token may do: ``viewer`` reads, ``operator`` changes the fleet, ``admin`` all."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """Order of privilege: viewer < operator < admin."""
        return _RANKS[self]

    def allows(self, needed: Role) -> bool:
        """Whether a token with this role may do what ``needed`` may do."""
        return self.rank >= needed.rank


_RANKS = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


def generate_token() -> str:
    """A new random API token (shown once, never stored in clear)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The stored form of a token: hex SHA-256."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_matches(token: str, stored_hash: str) -> bool:
    """Constant-time check of a presented token against a stored hash."""
    return hmac.compare_digest(hash_token(token), stored_hash)


def token_hint(token: str) -> str:
    """A short, non-secret label for a token (its first characters), for listings."""
    return token[: len(TOKEN_PREFIX) + 4] + "…"


def check_bootstrap_token(token: str) -> str:
    """Validate an operator-supplied bootstrap admin token; refuse weak ones."""
    stripped = token.strip()
    if len(stripped) < MIN_TOKEN_CHARS:
        raise ValueError(f"the bootstrap admin token must be at least {MIN_TOKEN_CHARS} characters")
    if stripped.lower() in {"changeme", "change-me", "secret", "password", "admin"}:
        raise ValueError("the bootstrap admin token is a placeholder; set a random one")
    return stripped
