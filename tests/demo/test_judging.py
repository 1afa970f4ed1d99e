"""What the demo reads about judging, from the real API over a real SQLite file.

The database holds what ingest would have stored: a small device's judged
answers, ungraded, and the controller's judge steps that carry them to the big
device (one done, one failed); the demo's view comes only through the API.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session

from controller.demo.judging import all_graded, judging
from controller.models import BenchmarkResult, BenchmarkRun, Command, Device
from tests.controller.api.conftest import Api, start_api

JUDGE = "gemma3-270m-q4_k_m"
AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
DEVICES: dict[str, dict[str, Any]] = {
    "pizero-01": {"device_class": "pizero2w-512mb"},
    "pi4-01": {"device_class": "pi4-4gb"},
}
BENCHES: list[dict[str, Any]] = [
    {"device_id": "pizero-01", "categories": ["knowledge"], "status": "ok"},
    {"device_id": "pi4-01", "categories": ["knowledge"], "status": "ok", "judge_model_id": JUDGE},
    {"device_id": "pi4-01", "suite_id": "everyday-choice", "status": "ok"},  # needs no judge
]


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    running = start_api(tmp_path / "data")
    with Session(running.engine) as session:
        for device_id, device in DEVICES.items():
            session.add(Device(id=device_id, enrolled=True, arch="x86_64", **device))
        session.flush()
        for pk, device_id in ((1, "pizero-01"), (2, "pi4-01")):
            run = BenchmarkRun(
                id=pk, device_id=device_id, device_class=DEVICES[device_id]["device_class"],
                model_id="smol", run_id=f"r{pk}", seq=pk, threads=1, n_ctx=512, peak_rss_mb=90,
                sent_at=AT,
            )  # fmt: skip
            session.add(run)
            session.flush()  # the results refer to the run (and it to the device)
            for refined in (False, True):  # two judged answers per mode
                session.add(_result(run, "judged", refined))
            session.add(_result(run, "choice", False))
        session.commit()
    yield running
    running.server.stop()
    running.engine.dispose()


def _result(run: BenchmarkRun, kind: str, refined: bool) -> BenchmarkResult:
    assert run.id is not None
    return BenchmarkResult(
        run_pk=run.id, device_id=run.device_id, device_class=run.device_class,
        model_id=run.model_id, category="knowledge", type=kind, refined=refined,
        n=2 if kind == "judged" else 108, judge_missing=2 if kind == "judged" else 0,
        peak_rss_mb=90, measured_at=AT,
    )  # fmt: skip


def _step(command_id: str, status: str, row_ids: list[int], reason: str | None = None) -> Command:
    tasks: list[dict[str, Any]] = [
        {"run_pk": 1, "item_id": "k1", "question": "?", "target": "reference", "answer": "a"}
    ]
    answer = {"run_pk": 1, "item_id": "k1", "question": "?", "target": "answer", "answer": "b"}
    tasks += [{**answer, "row_id": row_id} for row_id in row_ids]
    body = {"type": "judge", "command_id": command_id, "judge_model_id": JUDGE, "tasks": tasks}
    return Command(
        id=command_id, device_id="pi4-01", type="judge", body=body, status=status, reason=reason
    )


def _add(api: Api, *steps: Command) -> None:
    with Session(api.engine) as session:
        session.add_all(steps)
        session.commit()


def test_the_small_devices_answers_are_graded_once_every_judge_step_carrying_them_is_ok(
    api: Api,
) -> None:
    operator = {"Authorization": f"Bearer {api.tokens['operator']}"}
    with httpx.Client(base_url=f"{api.url}/api/v1", headers=operator, timeout=30) as client:
        before = judging(client, BENCHES, DEVICES)
        assert [j["device_id"] for j in before] == ["pizero-01", "pi4-01"]
        zero, pi4 = before
        assert (zero["answers"], zero["graded"], zero["judged_by"]) == (4, 0, {})
        assert zero["pending"].startswith("no judge step sent for them yet")
        assert (pi4["answers"], pi4["graded"], pi4["judged_by"]) == (4, 4, {"pi4-01": JUDGE})
        assert not all_graded(before)

        _add(api, _step("judge-a", "ok", [1, 2]), _step("judge-b", "error", [3, 4], "OOM"))
        partly = judging(client, BENCHES, DEVICES)[0]
        assert (partly["graded"], partly["judged_by"]) == (2, {"pi4-01": JUDGE})
        assert partly["pending"] == "judge step judge-b on pi4-01 error: OOM"

        _add(api, _step("judge-c", "sent", [3, 4]))
        assert (
            "judge step judge-c on pi4-01 still running"
            in judging(client, BENCHES, DEVICES)[0]["pending"]
        )

        with Session(api.engine) as session:
            step = session.get(Command, "judge-c")
            assert step is not None
            step.status = "ok"
            session.commit()
        after = judging(client, BENCHES, DEVICES)
        assert after[0]["graded"] == 4 and after[0]["pending"] is None and all_graded(after)
