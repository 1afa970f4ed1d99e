"""Who is calling: the token's name and role, so a client offers only what the role allows."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from controller.api.deps import PrincipalDep
from controller.models import Role

router = APIRouter(tags=["session"])


class Me(BaseModel):
    """The calling token's name and role (never the secret)."""

    name: str
    role: Role


@router.get("/me", response_model=Me)
def whoami(principal: PrincipalDep) -> Me:
    """The caller's token name and role; a dashboard signs in with this call."""
    return Me(name=principal.name, role=principal.role)
