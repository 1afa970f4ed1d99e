"""API errors with a stable code and a readable message: ``{"error": ..., "detail": ...}``."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DataError, IntegrityError
from starlette.exceptions import HTTPException

logger = logging.getLogger(__name__)


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


class BodyTooLarge(HTTPException):
    """A request body over its route's limit.

    An HTTPException, so FastAPI's body parsing passes it on instead of making it a 400.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body is larger than {limit} bytes")


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


async def _too_large(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BodyTooLarge)
    body = ErrorBody(error="body_too_large", detail=exc.detail)
    return JSONResponse(body.model_dump(), status_code=413, headers={"Connection": "close"})


async def _integrity(_: Request, exc: Exception) -> JSONResponse:
    logger.info("refused a write that breaks a database constraint: %s", type(exc).__name__)
    body = ErrorBody(error="conflict", detail="the change conflicts with existing data")
    return JSONResponse(body.model_dump(), status_code=409)


async def _data(_: Request, exc: Exception) -> JSONResponse:
    logger.info("refused a value the database cannot store: %s", type(exc).__name__)
    body = ErrorBody(error="invalid_value", detail="a value is too long or out of range")
    return JSONResponse(body.model_dump(), status_code=422)


def install(app: FastAPI) -> None:
    """Register the handlers: :class:`ApiError`, and constraint/data errors as 409/422."""
    app.add_exception_handler(ApiError, _render)
    app.add_exception_handler(BodyTooLarge, _too_large)
    app.add_exception_handler(IntegrityError, _integrity)
    app.add_exception_handler(DataError, _data)
