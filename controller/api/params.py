"""Query and body values normalised before they reach the database."""

from __future__ import annotations

from datetime import UTC, datetime

from controller.api.errors import bad_request


def as_utc(moment: datetime, *, name: str = "time") -> datetime:
    """``moment`` in UTC (naive taken as UTC); 400 when it cannot be represented."""
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (OverflowError, ValueError):
        raise bad_request("bad_time", f"{name} {moment.isoformat()} is out of range") from None


def optional_utc(moment: datetime | None, *, name: str = "time") -> datetime | None:
    """:func:`as_utc` for optional values."""
    return None if moment is None else as_utc(moment, name=name)
