"""API tokens (admin only): list, create (secret shown once), revoke."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlmodel import col, select

from controller.api.deps import AdminDep, SessionDep, StateDep
from controller.api.errors import conflict, not_found
from controller.api.pagination import Page, PageDep, RowId, paginate
from controller.core.security import create_api_token
from controller.models import ApiToken, ApiTokenCreate, ApiTokenPublic, Role, utcnow

router = APIRouter(prefix="/tokens", tags=["tokens"])


class ApiTokenCreated(ApiTokenPublic):
    """A new token; ``token`` is the secret and is never shown again."""

    token: str


@router.get("", response_model=Page[ApiTokenPublic])
def list_tokens(session: SessionDep, page: PageDep) -> Page[Any]:
    """Every token with its role and use (never the secrets)."""
    rows, total = paginate(session, select(ApiToken).order_by(col(ApiToken.id)), page)
    return Page(items=rows, total=total, limit=page.limit, offset=page.offset)


@router.post("", response_model=ApiTokenCreated, status_code=201)
def create_token(body: ApiTokenCreate, session: SessionDep, caller: AdminDep) -> ApiTokenCreated:
    """Create a token with a role; the response carries the secret, once."""
    row, secret = create_api_token(
        session, name=body.name, role=body.role, created_by=caller.name, expires_at=body.expires_at
    )
    return ApiTokenCreated.model_validate({**row.model_dump(), "token": secret})


@router.delete("/{token_id}", response_model=ApiTokenPublic)
def revoke_token(
    token_id: RowId, session: SessionDep, state: StateDep, caller: AdminDep
) -> ApiToken:
    """Revoke a token at once; the last working admin token cannot be revoked."""
    row = session.get(ApiToken, token_id)
    if row is None:
        raise not_found(f"token {token_id}")
    if row.revoked_at is None and row.role == Role.ADMIN.value and _admins(session) <= 1:
        raise conflict("this is the last working admin token; create another admin first")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.add(row)
        session.commit()
        session.refresh(row)
    state.tokens.invalidate()
    return row


def _admins(session: SessionDep) -> int:
    query = select(ApiToken).where(
        col(ApiToken.role) == Role.ADMIN.value, col(ApiToken.revoked_at).is_(None)
    )
    return len(session.exec(query).all())
