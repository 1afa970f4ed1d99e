"""Download sources of registry models, as ``bench`` commands carry them to devices."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sqlmodel import Session, col, select

from controller.models import Model
from shared.messages import ModelSource


def registry_sources(
    session: Session, model_ids: Iterable[str], url_for: Callable[[str], str]
) -> list[ModelSource]:
    """A source (registry file URL, sha256, size) for each named model the registry holds.

    Models the registry does not know are left out: a device may hold them anyway
    (a demo model, the one it serves), and says so in its ack if it does not.
    """
    wanted = list(dict.fromkeys(model_ids))
    rows = {m.id: m for m in session.exec(select(Model).where(col(Model.id).in_(wanted))).all()}
    return [
        ModelSource(
            model_id=model_id,
            sha256=rows[model_id].sha256,
            url=url_for(model_id),
            size_bytes=max(rows[model_id].size_bytes, 1),
        )
        for model_id in wanted
        if model_id in rows
    ]
