"""A device upgraded from before strategies restores its saved assignment with the same meaning."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agent.models.assignment import Assignment
from shared.messages import AssignCommand

SHA = "a" * 64


def test_an_assignment_saved_with_refine_reads_as_refine_1_or_direct() -> None:
    old = {"model_id": "m", "sha256": SHA, "path": "/m.gguf", "refine": True, "n_ctx": None}
    assert Assignment.from_saved(old).strategy == "refine:1"
    assert Assignment.from_saved({**old, "refine": False}).strategy == "direct"
    new = {"model_id": "m", "sha256": SHA, "path": "/m.gguf", "strategy": "vote:5"}
    assert Assignment.from_saved(new).strategy == "vote:5"


def test_an_assign_command_from_an_older_controller_maps_refine_to_refine_1() -> None:
    fields = {"command_id": "c", "model_id": "m", "sha256": SHA, "url": "/f", "size_bytes": 1}
    assert AssignCommand(**fields, refine=True).served_strategy().name == "refine:1"
    assert AssignCommand(**fields).served_strategy().name == "direct"
    chosen = AssignCommand(**fields, refine=True, strategy="verify-refine")
    assert chosen.served_strategy().name == "verify-refine"


def test_a_message_naming_an_unknown_strategy_is_refused() -> None:
    fields = {"command_id": "c", "model_id": "m", "sha256": SHA, "url": "/f", "size_bytes": 1}
    with pytest.raises(ValidationError, match="unknown strategy"):
        AssignCommand(**fields, strategy="think-hard")
    assert AssignCommand(**fields, strategy="VOTE:5").strategy == "vote:5"
