"""The persisted assignment (``assignment.json``): what a restarted agent serves, and its rollback.

Kept apart from :mod:`agent.models.assign` so that reading it loads no llama.cpp
(``edgefleet doctor`` checks the model it names against the memory budget).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from shared.strategies import DIRECT, Strategy

ASSIGNMENT_FILE = "assignment.json"


@dataclass(frozen=True)
class Assignment:
    """What is (or was) served, as persisted."""

    model_id: str
    sha256: str | None
    path: str
    strategy: str = DIRECT.name
    n_ctx: int | None = None

    @classmethod
    def from_saved(cls, saved: dict[str, Any]) -> Assignment:
        """Read a persisted assignment; one saved before strategies has ``refine`` instead."""
        fields = dict(saved)
        refine = bool(fields.pop("refine", False))
        fields.setdefault("strategy", Strategy.from_refine(refine).name)
        return cls(**fields)


def read_assignments(path: Path) -> tuple[Assignment | None, Assignment | None]:
    """(current, previous) from the file; both None if it is missing or unreadable."""
    try:
        data = json.loads(path.read_text())
        current, previous = (data.get(k) for k in ("current", "previous"))
        return (
            Assignment.from_saved(current) if current else None,
            Assignment.from_saved(previous) if previous else None,
        )
    except (OSError, ValueError, TypeError, AttributeError):
        return None, None


def write_assignments(path: Path, current: Assignment | None, previous: Assignment | None) -> None:
    """Replace the file atomically."""
    data = {
        "current": asdict(current) if current else None,
        "previous": asdict(previous) if previous else None,
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def model_to_serve(data_dir: Path, initial_model: Path | None) -> Path | None:
    """The file a (re)started agent serves first: the saved assignment, else ``initial_model``."""
    current, _ = read_assignments(data_dir / ASSIGNMENT_FILE)
    if current is not None and Path(current.path).is_file():
        return Path(current.path)
    return initial_model if initial_model is not None and initial_model.is_file() else None
