"""Typed dependencies: the database session, the caller's token and role checks.

Authorisation is secure by default: :func:`authorize` is attached to every
API router at composition time and derives the needed role from the HTTP
method (reads need ``viewer``, anything else ``operator``); admin-only
routers add :data:`require_admin`. A new route is therefore guarded without
anyone remembering to guard it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from controller.api.errors import ApiError, forbidden, unauthorized
from controller.api.state import AppState, CommandSender
from controller.core.security import Principal, role_allows
from controller.models import Role
from controller.plans.wiring import Planning

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

bearer_scheme = HTTPBearer(auto_error=False, description="an edgefleet API token")


def get_state(request: Request) -> AppState:
    """The app's wired parts (engine, store, command sender, profiles)."""
    state: AppState = request.app.state.edgefleet
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def _no_broker() -> ApiError:
    return ApiError(503, "no_broker", "this controller has no MQTT connection to send commands")


def command_sender(state: StateDep) -> CommandSender:
    """The app's command sender, or 503 when this controller has no MQTT connection."""
    if state.command_sender is None:
        raise _no_broker()
    return state.command_sender


def planning(state: StateDep) -> Planning:
    """The app's plan applier and profiler, or 503 when it cannot send commands."""
    if state.planning is None:
        raise _no_broker()
    return state.planning


SenderDep = Annotated[CommandSender, Depends(command_sender)]
PlanningDep = Annotated[Planning, Depends(planning)]


def get_session(state: StateDep) -> Iterator[Session]:
    """One database session per request."""
    with Session(state.engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def current_principal(
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    """The caller's token, or 401 with the reason."""
    if credentials is None or not credentials.credentials:
        raise unauthorized("missing token: send 'Authorization: Bearer <token>'")
    principal = state.tokens.authenticate(credentials.credentials)
    if principal is None:
        raise unauthorized("unknown or revoked token")
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def _check(principal: Principal, needed: Role) -> Principal:
    if not role_allows(principal.role, needed):
        raise forbidden(
            f"this call needs the {needed.value} role; your token has {principal.role.value}"
        )
    return principal


def require_role(needed: Role) -> Callable[[Principal], Principal]:
    """A dependency that lets through only tokens with at least ``needed``."""

    def dependency(principal: PrincipalDep) -> Principal:
        return _check(principal, needed)

    dependency.__name__ = f"require_{needed.value}"
    return dependency


def authorize(request: Request, principal: PrincipalDep) -> Principal:
    """Reads need viewer; every other method needs operator."""
    needed = Role.VIEWER if request.method in READ_METHODS else Role.OPERATOR
    return _check(principal, needed)


require_admin = require_role(Role.ADMIN)
ViewerDep = Annotated[Principal, Depends(require_role(Role.VIEWER))]
OperatorDep = Annotated[Principal, Depends(require_role(Role.OPERATOR))]
AdminDep = Annotated[Principal, Depends(require_admin)]
