"""The model registry: list, inspect, import (path or streamed upload), edit, delete."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from controller.api.deps import AdminDep, SessionDep, StateDep
from controller.api.errors import ApiError, conflict, not_found
from controller.api.pagination import Page, PageDep, paginate
from controller.models import DeviceClass, Model, ModelCreate, ModelPublic, ModelUpdate
from controller.registry import service
from controller.registry.store import RegistryError, StoredFile
from shared.profiles import DeviceProfile

router = APIRouter(prefix="/models", tags=["models"])

MODEL_ID_PATTERN = service.MODEL_ID_RE.pattern
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "description": "the GGUF file's bytes, streamed",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}
_STATUS = {"too_large": 413, "not_found": 404, "disk_full": 507}


class ClassFit(BaseModel):
    """Estimated memory under one class's settings, against its budget."""

    estimate_mb: float
    budget_mb: int
    parallel: int = Field(description="sequences decoded together, each with its own KV cells")
    fits: bool


class ModelDetail(ModelPublic):
    """A registry model with its memory estimate for every device class."""

    memory_estimate: dict[str, Any] | None
    memory_by_class: dict[str, ClassFit]


def registry_error(exc: RegistryError) -> ApiError:
    """Map a refused file to a 4xx with the registry's reason code."""
    return ApiError(_STATUS.get(exc.reason, 400), exc.reason, exc.detail)


def _get(session: Session, model_id: str) -> Model:
    model = session.get(Model, model_id)
    if model is None:
        raise not_found(f"model {model_id!r}")
    return model


def _profiles(session: Session) -> list[DeviceProfile]:
    rows = session.exec(select(DeviceClass).order_by(col(DeviceClass.name))).all()
    return [DeviceProfile.model_validate(row.profile) for row in rows]


@router.get("", response_model=Page[ModelPublic])
def list_models(
    session: SessionDep,
    page: PageDep,
    architecture: Annotated[str | None, Query(max_length=64)] = None,
    quantization: Annotated[str | None, Query(max_length=32)] = None,
) -> Page[Any]:
    """Registry models by id, optionally filtered by architecture or quantization."""
    stmt = select(Model).order_by(col(Model.id))
    if architecture is not None:
        stmt = stmt.where(col(Model.architecture) == architecture)
    if quantization is not None:
        stmt = stmt.where(col(Model.quantization) == quantization)
    rows, total = paginate(session, stmt, page)
    return Page(items=rows, total=total, limit=page.limit, offset=page.offset)


@router.get("/{model_id}", response_model=ModelDetail)
def get_model(model_id: str, session: SessionDep) -> ModelDetail:
    """One model with its memory estimate per device class."""
    model = _get(session, model_id)
    fits = service.memory_by_class(model, _profiles(session))
    return ModelDetail.model_validate(
        {**model.model_dump(), "memory_by_class": fits}, from_attributes=True
    )


def _register(state: Any, stored: StoredFile, **fields: Any) -> Model:
    """Register a stored file; if that fails, a file no model uses is removed again."""
    with Session(state.engine, expire_on_commit=False) as session:
        try:
            return service.register(session, stored, **fields)
        except service.ModelConflict as exc:
            _drop_if_unused(state, stored)
            raise conflict(str(exc)) from None
        except BaseException:
            _drop_if_unused(state, stored)
            raise


def _drop_if_unused(state: Any, stored: StoredFile) -> None:
    with Session(state.engine) as session:
        used = session.exec(select(Model.id).where(Model.sha256 == stored.sha256)).first()
    if used is None:
        state.store.delete(stored.sha256)


@router.post("", response_model=ModelPublic, status_code=201)
def import_model(body: ModelCreate, state: StateDep, _: AdminDep) -> Model:
    """Import a GGUF from a path on the controller's disk (admin: it reads server files)."""
    _precheck(state, body.id)
    try:
        stored = state.store.import_path(Path(body.path))
    except RegistryError as exc:
        raise registry_error(exc) from None
    return _register(state, stored, model_id=body.id, name=body.name, description=body.description)


def _precheck(state: Any, model_id: str) -> None:
    try:
        service.check_model_id(model_id)
    except RegistryError as exc:
        raise registry_error(exc) from None
    with Session(state.engine) as session:
        if session.get(Model, model_id) is not None:
            raise conflict(f"model id {model_id!r} is already in the registry")


@router.post("/upload", response_model=ModelPublic, status_code=201, openapi_extra=UPLOAD_BODY)
async def upload_model(
    request: Request,
    state: StateDep,
    model_id: Annotated[str, Query(pattern=MODEL_ID_PATTERN, description="registry id")],
    name: Annotated[str | None, Query(max_length=256)] = None,
    description: Annotated[str, Query(max_length=2000)] = "",
) -> Model:
    """Upload a GGUF as the request body; it is streamed to disk, hashed and checked."""
    await run_in_threadpool(_precheck, state, model_id)
    incoming = await run_in_threadpool(state.store.begin)
    try:
        async for chunk in request.stream():
            incoming.feed(chunk)
    except RegistryError as exc:
        incoming.abort()
        raise registry_error(exc) from None
    except BaseException:  # a disconnect, a full disk, a body over its limit: no orphan file
        incoming.abort()
        raise
    try:
        stored = await run_in_threadpool(incoming.finish)
    except RegistryError as exc:
        raise registry_error(exc) from None
    return await run_in_threadpool(
        _register, state, stored, model_id=model_id, name=name, description=description
    )


@router.patch("/{model_id}", response_model=ModelPublic)
def update_model(model_id: str, update: ModelUpdate, session: SessionDep) -> Model:
    """Change a model's name, description or extrinsic merit."""
    model = _get(session, model_id)
    model.sqlmodel_update(update.model_dump(exclude_unset=True, exclude_none=True))
    session.add(model)
    session.commit()
    session.refresh(model)
    return model


@router.delete("/{model_id}", status_code=204)
def delete_model(model_id: str, session: SessionDep, state: StateDep) -> None:
    """Delete a model and its file; refused (409) while devices, plans or pins use it."""
    model = _get(session, model_id)
    try:
        service.delete(session, state.store, model)
    except service.ModelConflict as exc:
        raise conflict(str(exc)) from None
