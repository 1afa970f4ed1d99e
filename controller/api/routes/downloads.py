"""Model file downloads for agents and operators: Range, ETag, token or device login."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBasic, HTTPBasicCredentials
from sqlmodel import Session

from controller.api.deps import StateDep, bearer_scheme
from controller.api.errors import ERROR_RESPONSES, ApiError, forbidden, not_found
from controller.api.state import AppState
from controller.core.security import role_allows
from controller.models import Model, Role
from controller.registry.serve import GGUF_MEDIA_TYPE, file_response

router = APIRouter(prefix="/models", tags=["models"])


class _OptionalBasic(HTTPBasic):
    """Documents Basic auth in OpenAPI; a malformed header is left to our own 401."""

    async def __call__(self, request: Request) -> HTTPBasicCredentials | None:  # type: ignore[override]
        try:
            return await super().__call__(request)
        except HTTPException:
            return None


basic_scheme = _OptionalBasic(auto_error=False, description="a device's MQTT login")


def _denied(detail: str) -> ApiError:
    return ApiError(
        401,
        "unauthorized",
        detail,
        headers={"WWW-Authenticate": 'Bearer, Basic realm="edgefleet models"'},
    )


def _basic(request: Request) -> tuple[str, str] | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def download_caller(
    request: Request,
    state: StateDep,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    _basic_creds: Annotated[HTTPBasicCredentials | None, Depends(basic_scheme)],
) -> str:
    """An API token (viewer or above: not a client key) or a device's MQTT login; who it is."""
    if _bearer is not None and _bearer.credentials:
        principal = state.tokens.authenticate(_bearer.credentials)
        if principal is None:
            raise _denied("unknown or revoked token")
        if not role_allows(principal.role, Role.VIEWER):
            raise forbidden(f"downloads need the viewer role; your token has {principal.role}")
        return f"token:{principal.name}"
    pair = _basic(request)
    if pair is not None:
        if state.devices.verify(*pair):
            return f"device:{pair[0]}"
        raise _denied("wrong device id or password")
    raise _denied("send an API token (Bearer) or the device's login (Basic)")


def _model(state: AppState, model_id: str) -> Model:
    with Session(state.engine) as session:
        model = session.get(Model, model_id)
    if model is None:
        raise not_found(f"model {model_id!r}")
    return model


_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {GGUF_MEDIA_TYPE: {}}, "description": "the file (or a range of it)"},
    206: {"content": {GGUF_MEDIA_TYPE: {}}, "description": "the requested byte range"},
    304: {"description": "unchanged (If-None-Match)"},
    416: {"description": "range not satisfiable"},
    **ERROR_RESPONSES,
}


@router.head(
    "/{model_id}/file",
    response_class=Response,
    responses=_RESPONSES,
    operation_id="model_file_head",
    summary="Model file size and ETag",
)
@router.get(
    "/{model_id}/file", response_class=Response, responses=_RESPONSES, operation_id="model_file"
)
def download_model(
    model_id: str, request: Request, state: StateDep, _: Annotated[str, Depends(download_caller)]
) -> Response:
    """The GGUF file; resumable with Range/If-Range, ETag is the quoted sha256."""
    model = _model(state, model_id)
    path = state.store.path_for(model.sha256)
    if not path.is_file():
        raise ApiError(
            410, "file_missing", f"model {model_id!r} is registered but its file is gone"
        )
    return file_response(request, path, sha256=model.sha256, filename=model.filename)
