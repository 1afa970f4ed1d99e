"""Registry entries over stored files: register with metadata and estimate; guarded delete."""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from controller.models import Assignment, Device, Model, Pin, Plan, PlanStatus
from controller.registry.store import ModelStore, RegistryError, StoredFile
from shared.gguf_info import GgufInfo, estimate_memory, parallel_for
from shared.profiles import DeviceProfile

logger = logging.getLogger(__name__)

MODEL_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
ESTIMATE_N_CTX = 2048
"""Context size of the stored estimate; per-class estimates use each class's own n_ctx."""


class ModelConflict(ValueError):
    """The registry already holds this id or content, or the model is in use."""


def check_model_id(model_id: str) -> str:
    """Model ids are URL- and file-name-safe slugs."""
    if not MODEL_ID_RE.match(model_id):
        raise RegistryError(
            "bad_model_id", f"model id {model_id!r} must match {MODEL_ID_RE.pattern}"
        )
    return model_id


def _metadata(info: GgufInfo) -> dict[str, Any]:
    data = dataclasses.asdict(info)
    data.pop("path")
    return data


def info_of(model: Model) -> GgufInfo:
    """Rebuild the header summary stored at import (no file access)."""
    return GgufInfo(path=Path(model.path), **model.gguf_metadata)


def register(
    session: Session,
    stored: StoredFile,
    *,
    model_id: str,
    name: str | None = None,
    description: str = "",
    filename: str | None = None,
) -> Model:
    """Add a registry row for a stored file; refuse a taken id or already-registered content."""
    check_model_id(model_id)
    if session.get(Model, model_id) is not None:
        raise ModelConflict(f"model id {model_id!r} is already in the registry")
    same = session.exec(select(Model).where(Model.sha256 == stored.sha256)).first()
    if same is not None:
        raise ModelConflict(f"this file is already in the registry as {same.id!r}")
    info = stored.info
    n_ctx = min(ESTIMATE_N_CTX, info.context_length or ESTIMATE_N_CTX)
    estimate = estimate_memory(info, n_ctx=n_ctx)
    model = Model(
        id=model_id,
        name=name or info.name or model_id,
        description=description,
        sha256=stored.sha256,
        size_bytes=stored.size_bytes,
        path=str(stored.path),
        filename=filename or f"{model_id}.gguf",
        architecture=info.architecture,
        quantization=info.quantization,
        parameters=info.parameters,
        context_length=info.context_length,
        instruction_tuned=info.instruction_tuned,
        gguf_metadata=_metadata(info),
        memory_estimate_mb=round(estimate.total_mb, 3),
        memory_estimate_n_ctx=n_ctx,
        memory_estimate={**dataclasses.asdict(estimate), "total": estimate.total},
    )
    session.add(model)
    session.commit()
    session.refresh(model)
    logger.info("registered model %s (%s, %d bytes)", model_id, stored.sha256, stored.size_bytes)
    return model


def memory_by_class(model: Model, profiles: list[DeviceProfile]) -> dict[str, dict[str, Any]]:
    """Estimated MB to run ``model`` under each class's n_ctx, KV type and parallel sequences."""
    info = info_of(model)
    fits: dict[str, dict[str, Any]] = {}
    for profile in profiles:
        parallel = parallel_for(info, profile)
        estimate = estimate_memory(
            info, n_ctx=profile.n_ctx, kv_cache_type=profile.kv_cache_type, parallel=parallel
        )
        fits[profile.name] = {
            "estimate_mb": round(estimate.total_mb, 1),
            "budget_mb": profile.memory_budget_mb,
            "parallel": parallel,
            "fits": estimate.total_mb <= profile.memory_budget_mb,
        }
    return fits


def usage(session: Session, model_id: str) -> list[str]:
    """Why a model may not be deleted: devices serving it, live plan assignments, pins."""
    reasons: list[str] = []
    serving = session.exec(
        select(func.count()).select_from(Device).where(col(Device.model_id) == model_id)
    ).one()
    if serving:
        reasons.append(f"{serving} device(s) serve it")
    live = [PlanStatus.DRAFT.value, PlanStatus.APPLIED.value]
    assigned = session.exec(
        select(func.count())
        .select_from(Assignment)
        .join(Plan, col(Plan.id) == col(Assignment.plan_id))
        .where(col(Assignment.model_id) == model_id, col(Plan.status).in_(live))
    ).one()
    if assigned:
        reasons.append(f"{assigned} assignment(s) in draft or applied plans")
    pins = session.exec(
        select(func.count()).select_from(Pin).where(col(Pin.model_id) == model_id)
    ).one()
    if pins:
        reasons.append(f"{pins} pin(s) name it")
    return reasons


def delete(session: Session, store: ModelStore, model: Model) -> None:
    """Remove a model that nothing uses, and its file if no other entry shares it."""
    reasons = usage(session, model.id)
    if reasons:
        raise ModelConflict(f"model {model.id!r} is in use: " + "; ".join(reasons))
    sha256 = model.sha256
    session.delete(model)
    session.commit()
    store.delete(sha256)
    logger.info("deleted model %s", model.id)
