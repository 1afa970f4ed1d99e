"""Judging off the device: a small class's judged answers graded by the class that holds the judge.

Every part a real process (``controller run``, two ``agent run``). The
controller is configured with the fleet's judge (the real Gemma-3-270M) and
reference; neither bench names them, so both devices only generate. The
controller's judge step sends the ungraded answers, each beside the
reference's answer on the same item, to the one device whose class can hold
the judge; the grades come back with the judge's id and sha256, and the small
class's own B appears in ``/scores`` with n and an interval, not pooled.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.factories.profiles import write_profiles
from tests.support.fleet import Fleet, wait_for

pytestmark = pytest.mark.timeout(420)
SHAPES = {"m-small": {"n_embd": 64}, "m-big": {"n_embd": 512, "n_layers": 8, "n_ff": 1024}}
DEVICES = {"agent-small": "e2e-small", "agent-big": "e2e-big"}
JUDGE, REFERENCE = "gemma-judge", "m-big"
ITEMS = [
    {"id": "j1", "type": "judged", "category": "generic", "question": "Name a fruit."},
    {"id": "j2", "type": "judged", "category": "generic", "question": "Name a colour."},
    {"id": "j3", "type": "judged", "category": "generic", "question": "Name a planet."},
]
SUITE = (
    "\n".join(json.dumps(i) for i in [{"suite": "school", "version": "1"}, *ITEMS]) + "\n"
).encode()


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    """A controller whose fleet judge and reference are set, so it schedules judge steps."""
    classes = tmp_path / "classes"
    write_profiles(classes)
    env = {"JUDGE_MODEL_ID": JUDGE, "REFERENCE_MODEL_ID": REFERENCE}
    with Fleet(tmp_path, classes, **env) as running:
        yield running


def test_the_small_class_answers_are_graded_on_the_device_that_holds_the_judge(
    fleet: Fleet, tiny_gguf_factory: Callable[..., Path], gemma3_path: Path
) -> None:
    wait_for(fleet.healthy, 30, "the controller's /healthz", fleet.logs)
    for model_id, shape in SHAPES.items():
        fleet.upload_model(model_id, tiny_gguf_factory(model_id, **shape))
    fleet.upload_model(JUDGE, gemma3_path)
    uploaded = fleet.api.post("/suites", params={"suite_id": "school"}, content=SUITE)
    assert uploaded.status_code == 201, uploaded.text
    fleet.enroll(DEVICES)

    benches = {"agent-big": REFERENCE, "agent-small": "m-small"}
    for device_id, model_id in benches.items():
        command = {"type": "bench", "model_ids": [model_id], "suite_id": "school", "refine": False}
        command_id = fleet.send(device_id, command)
        wait_for(
            lambda c=command_id: {"ok", "error"} & set(fleet.ack_statuses(c)),
            200,
            f"the bench on {device_id}",
            fleet.logs,
        )
        assert "ok" in fleet.ack_statuses(command_id), fleet.api.get(f"/commands/{command_id}")

    graded = wait_for(lambda: _graded(fleet.db_file), 240, "both runs graded", fleet.logs)
    judge_sha = hashlib.sha256(gemma3_path.read_bytes()).hexdigest()
    assert {row[0] for row in graded} == set(DEVICES)  # the small class's answers too
    assert {(row[1], row[2]) for row in graded} == {(JUDGE, judge_sha)}
    steps = _judge_steps(fleet.db_file)
    assert steps and {device for device, _ in steps} == {"agent-big"}  # never the small one
    assert all(status == "ok" for _, status in steps)

    scores = fleet.api.get("/scores").json()["classes"]
    small = next(r for r in scores["e2e-small"] if r["model_id"] == "m-small" and not r["refine"])
    label = f"school@{hashlib.sha256(SUITE).hexdigest()[:12]}"
    assert not small["quality_pooled"] and small["suites"] == [label]
    assert small["n_questions"] >= 1
    low, high = small["B_ci"]
    assert low <= small["B"] <= high


def _graded(db_file: Path) -> list[tuple[str, str, str]] | None:
    """(device, judge id, judge sha256) of every judged row, once none is left ungraded."""
    with sqlite3.connect(db_file) as db:
        rows = db.execute(
            "SELECT device_id, judge_model_id, judge_sha256, reference_judge_score "
            "FROM benchmark_question WHERE type = 'judged'"
        ).fetchall()
    if len(rows) < len(ITEMS) * len(DEVICES) or any(row[1] is None for row in rows):
        return None
    return [row[:3] for row in rows]


def _judge_steps(db_file: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db_file) as db:
        return db.execute("SELECT device_id, status FROM command WHERE type = 'judge'").fetchall()
