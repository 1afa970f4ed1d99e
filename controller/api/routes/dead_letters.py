"""Dead letters: rejected MQTT messages with the reason, and running counts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from controller import crud
from controller.api.deps import SessionDep
from controller.api.errors import not_found
from controller.api.pagination import Page, PageDep, RowId, paginate
from controller.models import DeadLetter, DeadLetterPublic

router = APIRouter(prefix="/dead-letters", tags=["dead letters"])


class DeadLetterDetail(DeadLetterPublic):
    """A dead letter with its (possibly truncated) payload as text."""

    payload_text: str


@router.get("", response_model=Page[DeadLetterPublic])
def list_dead_letters(
    session: SessionDep,
    page: PageDep,
    reason: Annotated[str | None, Query(max_length=32)] = None,
    device_id: Annotated[str | None, Query(max_length=63)] = None,
) -> Page[Any]:
    """Rejected messages, newest first, filtered by reason or device."""
    rows, total = paginate(
        session, crud.dead_letters_query(reason=reason, device_id=device_id), page
    )
    return Page(items=rows, total=total, limit=page.limit, offset=page.offset)


@router.get("/counts", response_model=dict[str, int])
def dead_letter_counts(session: SessionDep) -> dict[str, int]:
    """Running totals of dead letters per reason (kept when old rows are pruned)."""
    return crud.dead_letter_counts(session)


@router.get("/{dead_letter_id}", response_model=DeadLetterDetail)
def get_dead_letter(dead_letter_id: RowId, session: SessionDep) -> DeadLetterDetail:
    """One dead letter with its payload."""
    row = session.get(DeadLetter, dead_letter_id)
    if row is None:
        raise not_found(f"dead letter {dead_letter_id}")
    text = row.payload.decode("utf-8", errors="replace")
    return DeadLetterDetail.model_validate({**row.model_dump(), "payload_text": text})
