"""API errors with a stable code and a readable message: ``{"error": ..., "detail": ...}``."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    """The JSON body of every 4xx the API raises on purpose."""

    error: str = Field(description="stable code, e.g. unauthorized, forbidden, not_found")
    detail: str = Field(description="what went wrong and what to do about it")


class ApiError(Exception):
    """Raised by handlers and dependencies; rendered as :class:`ErrorBody`."""

    def __init__(
        self, status_code: int, error: str, detail: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.error = error
        self.detail = detail
        self.headers = headers or {}


def unauthorized(detail: str) -> ApiError:
    """401: no usable credential was presented."""
    return ApiError(401, "unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


def forbidden(detail: str) -> ApiError:
    """403: the credential is valid but lacks the role."""
    return ApiError(403, "forbidden", detail)


def not_found(what: str) -> ApiError:
    """404 naming the missing thing."""
    return ApiError(404, "not_found", f"{what} not found")


def conflict(detail: str) -> ApiError:
    """409: the request contradicts the current state."""
    return ApiError(409, "conflict", detail)


def bad_request(error: str, detail: str) -> ApiError:
    """400 (or 422-like) with a specific code."""
    return ApiError(400, error, detail)


ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorBody, "description": "missing, unknown or revoked token"},
    403: {"model": ErrorBody, "description": "the token's role does not allow this call"},
}
"""Documented on every authenticated route."""


async def _render(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    body = ErrorBody(error=exc.error, detail=exc.detail)
    return JSONResponse(body.model_dump(), status_code=exc.status_code, headers=exc.headers)


def install(app: FastAPI) -> None:
    """Register the handler that renders :class:`ApiError`."""
    app.add_exception_handler(ApiError, _render)
