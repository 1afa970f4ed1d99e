"""Storing evaluation suites: validated once, kept as their exact bytes."""

from __future__ import annotations

from sqlmodel import Session

from controller.models import Suite
from shared.messages import SuiteSource
from shared.suites.builtin import BUILTIN, builtin_source
from shared.suites.suite import parse_suite


class SuiteConflict(ValueError):
    """The suite id is taken."""


def add_suite(session: Session, suite_id: str, data: bytes, *, created_by: str | None) -> Suite:
    """Validate and store a suite; raise ``SuiteError`` (bad lines) or ``SuiteConflict``."""
    parsed = parse_suite(data, name=suite_id, source="suite")
    if suite_id in BUILTIN:
        raise SuiteConflict(f"{suite_id!r} names a built-in suite; choose another id")
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


def suite_source(session: Session, suite_id: str, url: str | None) -> SuiteSource:
    """What a bench command carries for ``suite_id``: uploaded (fetch from ``url``) or built in.

    Raise ``LookupError`` when there is no such suite, or no URL to fetch an uploaded one.
    """
    row = session.get(Suite, suite_id)
    if row is not None:
        if url is None:
            raise LookupError(f"suite {suite_id!r} is uploaded, but no URL to fetch it is known")
        return SuiteSource(suite_id=row.id, sha256=row.sha256, url=url)
    if suite_id in BUILTIN:
        return builtin_source(suite_id)
    raise LookupError(f"suite {suite_id!r} is neither uploaded nor built in ({', '.join(BUILTIN)})")
