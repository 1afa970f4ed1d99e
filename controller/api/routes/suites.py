"""Evaluation suites: upload (validated, one error per bad line), list, show, delete, fetch.

A suite's bytes stay in the fleet: operators and devices read them, nothing
else does. Agents fetch a suite by id with their device login, as they fetch
models, and check its sha256 against the bench command's.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlmodel import Session, col, select

from controller.api.deps import OperatorDep, SessionDep
from controller.api.errors import ERROR_RESPONSES, ApiError, conflict, not_found
from controller.api.pagination import Page, PageDep, paginate
from controller.api.routes.downloads import download_caller
from controller.models import Suite, SuitePublic
from controller.registry.suites import SuiteConflict, add_suite
from shared.suites.suite import MAX_SUITE_BYTES, SuiteError, parse_suite

router = APIRouter(prefix="/suites", tags=["suites"])
file_router = APIRouter(prefix="/suites", tags=["suites"])
SUITE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$"
JSONL_MEDIA_TYPE = "application/jsonl"
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "description": "the suite file (JSON lines) as bytes",
        "content": {JSONL_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
    }
}


class SuiteDetail(SuitePublic):
    """A suite with its item ids and categories (not the questions themselves)."""

    items: list[dict[str, str]]


def _get(session: Session, suite_id: str) -> Suite:
    suite = session.get(Suite, suite_id)
    if suite is None:
        raise not_found(f"suite {suite_id!r}")
    return suite


@router.get("", response_model=Page[SuitePublic])
def list_suites(session: SessionDep, page: PageDep) -> Page[Any]:
    """Uploaded suites by id."""
    rows, total = paginate(session, select(Suite).order_by(col(Suite.id)), page)
    return Page(items=rows, total=total, limit=page.limit, offset=page.offset)


@router.get("/{suite_id}", response_model=SuiteDetail)
def get_suite(suite_id: str, session: SessionDep) -> SuiteDetail:
    """One suite: its version, sha256, counts per item type, and each item's id, type, category."""
    suite = _get(session, suite_id)
    parsed = parse_suite(suite.content, name=suite.id)
    items = [{"id": i.id, "type": i.type, "category": i.category} for i in parsed.items]
    return SuiteDetail.model_validate({**suite.model_dump(exclude={"content"}), "items": items})


@router.post("", response_model=SuitePublic, status_code=201, openapi_extra=UPLOAD_BODY)
async def upload_suite(
    request: Request,
    session: SessionDep,
    principal: OperatorDep,
    suite_id: Annotated[str, Query(pattern=SUITE_ID_PATTERN, description="id to store it under")],
) -> Suite:
    """Upload a suite file; a bad file is refused whole, with one error per bad line."""
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_SUITE_BYTES:
            raise ApiError(413, "too_large", f"a suite holds at most {MAX_SUITE_BYTES} bytes")
    try:
        return add_suite(session, suite_id, bytes(data), created_by=principal.name)
    except SuiteError as exc:
        raise ApiError(400, "bad_suite", "\n".join(exc.errors)) from None
    except SuiteConflict as exc:
        raise conflict(str(exc)) from None


@router.delete("/{suite_id}", status_code=204)
def delete_suite(suite_id: str, session: SessionDep) -> None:
    """Delete a suite (results measured on it keep its name and sha256)."""
    session.delete(_get(session, suite_id))
    session.commit()


@file_router.get(
    "/{suite_id}/file",
    response_class=Response,
    responses={200: {"content": {JSONL_MEDIA_TYPE: {}}}, **ERROR_RESPONSES},
    operation_id="suite_file",
)
def download_suite(
    suite_id: str, session: SessionDep, _: Annotated[str, Depends(download_caller)]
) -> Response:
    """The suite's exact bytes (ETag: the quoted sha256), for a device or a token."""
    suite = _get(session, suite_id)
    return Response(
        suite.content, media_type=JSONL_MEDIA_TYPE, headers={"ETag": f'"{suite.sha256}"'}
    )
