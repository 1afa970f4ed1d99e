"""Storing evaluation suites: validated once, kept as their exact bytes."""

from __future__ import annotations

from sqlmodel import Session

from controller.models import Suite
from shared.suites.suite import parse_suite


class SuiteConflict(ValueError):
    """The suite id is taken."""


def add_suite(session: Session, suite_id: str, data: bytes, *, created_by: str | None) -> Suite:
    """Validate and store a suite; raise ``SuiteError`` (bad lines) or ``SuiteConflict``."""
    parsed = parse_suite(data, name=suite_id, source="suite")
    if session.get(Suite, suite_id) is not None:
        raise SuiteConflict(f"suite id {suite_id!r} exists; delete it first or use another id")
    suite = Suite(
        id=suite_id,
        version=parsed.version,
        sha256=parsed.sha256,
        description=parsed.description[:2000],
        n_items=len(parsed.items),
        counts=parsed.counts(),
        created_by=created_by,
        content=data,
    )
    session.add(suite)
    session.commit()
    session.refresh(suite)
    return suite
