"""API tokens: generation, hashing, constant-time checks and roles.

A token is shown to its owner once, at creation; the database keeps only its
SHA-256 (tokens are 256-bit random, so a fast hash is enough: there is nothing
to brute-force). Lookups go by hash and the match is confirmed with
``hmac.compare_digest`` so no comparison leaks timing.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import SecretStr
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from controller.models import ApiToken, Role

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "eft_"
"""Marks edgefleet API tokens, so secret scanners and people can recognise one."""

LAST_USED_RESOLUTION = timedelta(minutes=1)
"""``last_used_at`` is refreshed at most this often, so reads rarely write."""

MIN_TOKEN_CHARS = 24
"""Shortest token accepted from the environment for the bootstrap admin."""


ROLE_RANK: dict[Role, int] = {Role.CLIENT: 0, Role.VIEWER: 1, Role.OPERATOR: 2, Role.ADMIN: 3}
"""Each role may do what the roles below it may; only the gateway's chat routes need no more
than ``client``, so a client key reaches nothing of the operators' API."""


def role_allows(have: Role | str, needed: Role) -> bool:
    """Whether a token with role ``have`` may do what ``needed`` may do."""
    try:
        return ROLE_RANK[Role(have)] >= ROLE_RANK[needed]
    except ValueError:
        return False


def generate_token() -> str:
    """A new random API token (shown once, never stored in clear)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The stored form of a token: hex SHA-256."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_prefix(token: str) -> str:
    """A short, non-secret label for a token (its first characters), for listings."""
    return token[: len(TOKEN_PREFIX) + 4]


def check_bootstrap_token(token: str) -> str:
    """Validate an operator-supplied bootstrap admin token; refuse weak ones."""
    stripped = token.strip()
    if len(stripped) < MIN_TOKEN_CHARS:
        raise ValueError(f"the bootstrap admin token must be at least {MIN_TOKEN_CHARS} characters")
    if stripped.lower() in {"changeme", "change-me", "secret", "password", "admin"}:
        raise ValueError("the bootstrap admin token is a placeholder; set a random one")
    return stripped


@dataclass(frozen=True)
class Principal:
    """Who is calling: a token's id, name and role (never the token itself)."""

    token_id: int
    name: str
    role: Role


def create_api_token(
    session: Session,
    *,
    name: str,
    role: Role,
    created_by: str | None = None,
    expires_at: datetime | None = None,
    secret: str | None = None,
) -> tuple[ApiToken, str]:
    """Store a new token (hash only) and return the row and the clear token, once."""
    clear = secret or generate_token()
    row = ApiToken(
        name=name,
        token_hash=hash_token(clear),
        prefix=token_prefix(clear),
        role=Role(role).value,
        created_by=created_by,
        expires_at=expires_at,
    )
    session.add(row)
    session.commit()
    session.refresh(row)
    logger.info("created API token %d (%s, role %s)", row.id, name, row.role)
    return row, clear


def ensure_bootstrap_admin(session: Session, configured: SecretStr | None) -> str | None:
    """Make sure an admin can log in; return a generated token to show once, else None.

    With a configured token, its hash is stored if absent and nothing is
    returned (the operator already knows it). Without one, a token is generated
    only when no usable admin token exists, i.e. on first start.
    """
    if configured is not None:
        secret = check_bootstrap_token(configured.get_secret_value())
        exists = session.exec(select(ApiToken).where(ApiToken.token_hash == hash_token(secret)))
        if exists.first() is None:
            create_api_token(session, name="bootstrap-admin", role=Role.ADMIN, secret=secret)
        return None
    admins = session.exec(
        select(ApiToken).where(
            ApiToken.role == Role.ADMIN.value, col(ApiToken.revoked_at).is_(None)
        )
    )
    if admins.first() is not None:
        return None
    _, clear = create_api_token(session, name="bootstrap-admin", role=Role.ADMIN)
    return clear


class TokenAuthenticator:
    """Checks bearer tokens against the database, with a short cache.

    The cache keeps hot requests from costing a query each; a revocation made
    through :meth:`invalidate` (this process) applies at once, one made by
    another replica within ``cache_ttl_s``.
    """

    def __init__(self, engine: Engine, *, cache_ttl_s: float = 5.0) -> None:
        self._engine = engine
        self._ttl = cache_ttl_s
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()

    def authenticate(self, token: str) -> Principal | None:
        """The principal for ``token``, or None if unknown, revoked or expired."""
        digest = hash_token(token)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(digest)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        principal = self._lookup(digest)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (now, principal)
        return principal

    def invalidate(self) -> None:
        """Forget cached answers (after a token is revoked or created)."""
        with self._lock:
            self._cache.clear()

    def _lookup(self, digest: str) -> Principal | None:
        with Session(self._engine) as session:
            row = session.exec(select(ApiToken).where(ApiToken.token_hash == digest)).first()
            if row is None or row.id is None or not hmac.compare_digest(row.token_hash, digest):
                return None
            now = datetime.now(UTC)
            if row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
                return None
            if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
                row.last_used_at = now
                session.add(row)
                session.commit()
            return Principal(token_id=row.id, name=row.name, role=Role(row.role))
