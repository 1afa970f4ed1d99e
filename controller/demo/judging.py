"""Who graded each demo bench's judged answers, and how many are graded yet.

A bench on a class too small for the judge stores its judged answers
ungraded; the controller's planner loop sends them in ``judge`` steps to a
device that holds the judge (:mod:`controller.plans.grading`). The demo reads
those steps through the API, so it can wait for their grades before it reads
``/scores`` and say which device judged which class's answers.
"""

from __future__ import annotations

from typing import Any

import httpx

RUNNING = {"pending", "sent", "accepted"}
"""A judge step's statuses before its device answered (``controller.models.CommandStatus``)."""


def judging(
    api: httpx.Client, benches: list[dict[str, Any]], devices: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """One entry per finished judged bench: answers, graded, judged by, and why any wait."""
    steps = api.get("/commands", params={"type": "judge", "limit": 500}).json()["items"]
    out = []
    for bench in benches:
        if bench.get("suite_id") or bench.get("status") != "ok":
            continue  # a choice suite needs no judge; a failed bench stored nothing
        device_id = bench["device_id"]
        rows = api.get("/bench/results", params={"device_id": device_id, "limit": 500}).json()
        judged = [r for r in rows["items"] if r["type"] == "judged"]
        entry: dict[str, Any] = {
            "device_id": device_id,
            "device_class": devices[device_id]["device_class"],
            "answers": sum(r["n"] for r in judged),
        }
        if bench.get("judge_model_id"):
            entry.update(graded=entry["answers"], judged_by={device_id: bench["judge_model_id"]})
        else:
            entry.update(_off_device(steps, {r["run_pk"] for r in judged}, entry["answers"]))
        out.append(entry)
    return out


def _off_device(steps: list[dict[str, Any]], runs: set[int], answers: int) -> dict[str, Any]:
    """Graded answers of ``runs`` from the judge steps that carried them; what holds the rest."""
    mine = [s for s in steps if any(t["run_pk"] in runs for t in s["body"]["tasks"])]
    done = [s for s in mine if s["status"] == "ok"]
    graded = {
        (t["run_pk"], t["row_id"])
        for s in done
        for t in s["body"]["tasks"]
        if t["target"] == "answer" and t["run_pk"] in runs
    }
    waiting = [s for s in mine if s["status"] != "ok"]
    if len(graded) >= answers:
        pending = None
    elif waiting:
        pending = "; ".join(
            f"judge step {s['id']} on {s['device_id']} "
            + ("still running" if s["status"] in RUNNING else f"{s['status']}: {s['reason']}")
            for s in waiting
        )
    else:
        pending = (
            "no judge step sent for them yet: the controller waits for an idle device that "
            "can hold the judge, and for the reference's answer on the same items"
        )
    return {
        "graded": len(graded),
        "judged_by": {s["device_id"]: s["body"]["judge_model_id"] for s in done},
        "pending": pending,
    }


def all_graded(entries: list[dict[str, Any]]) -> bool:
    """Whether every judged answer of the demo's benches has its grade."""
    return all(e["graded"] >= e["answers"] for e in entries)
