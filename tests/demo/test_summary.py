"""The demo's summary and caveats, from a report a real run wrote (tests/data)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from controller.demo.report import DemoReport
from controller.demo.scenario import caveats, engine_label
from controller.demo.summary import render

SAMPLE = Path(__file__).parents[1] / "data" / "demo_fleet_report.json"


@pytest.fixture
def report() -> DemoReport:
    return DemoReport(**json.loads(SAMPLE.read_text()))


def _shown(report: DemoReport, width: int = 100) -> str:
    console = Console(record=True, width=width)
    render(console, report)
    return console.export_text()


def test_summary_shows_classes_leaderboards_plan_answers_and_timings(report: DemoReport) -> None:
    shown = " ".join(_shown(report).split())  # panels wrap long lines
    for expected in (
        "pizero2w-512mb",
        "300 MB",
        "PeRFICS leaderboard, class pi4-4gb",
        "PeRFICS leaderboard, class pizero2w-512mb",
        "predicted",  # Gemma on the zero: never measured there
        "Plan 3",
        "gemma3-270m-q4_k_m: needs 0.39 GB (estimated 353 MB + 10% margin), budget 0.30 GB",
        "Asked every device (refinement on or off as planned): Give three simple ways",
        "y0 -> critique -> y1; 3 stage(s)",
        "took 111 s",
        "caveat: quality rests on 2 judged question(s)",  # as the sample run wrote it
    ):
        assert expected in shown, expected


def test_summary_of_a_run_stopped_early_shows_what_there_is(report: DemoReport) -> None:
    early = DemoReport(devices=report.devices, timings_s={"controller up, operator token": 4.8})
    shown = _shown(early, width=80)
    assert "pi4-01" in shown and "took 5 s" in shown
    assert "leaderboard" not in shown and "Plan" not in shown


def test_caveats_name_missing_quality_and_failed_benches(report: DemoReport) -> None:
    assert caveats(report) == [
        "B and I rest on as few as 2 scored item(s), the judged ones graded by a 270M base "
        "model, a weak judge: read them as noisy signals, not as a verdict on the models"
    ]
    report.scores = {"pi4-4gb": [], "pizero2w-512mb": []}
    report.benches[0].update(status="error", reason="the benchmark process died")
    report.plan["state"] = "rolled_back"
    notes = caveats(report)
    assert notes[0] == "the bench on pizero-01 failed: the benchmark process died"
    assert notes[1].startswith("no quality was measured")
    assert notes[2].startswith("the plan's rollout ended rolled_back")


def test_summary_shows_each_devices_engine_variant_or_how_its_check_died(report) -> None:
    report.devices["pi4-01"]["engine"] = engine_label(
        {"ok": True, "cpu_backend": "libggml-cpu-haswell.so"}
    )
    report.devices["pizero-01"]["engine"] = engine_label(
        {"ok": False, "crash": "SIGILL", "reason": "the engine check died: SIGILL (...)"}
    )
    shown = _shown(report, width=160)
    assert "haswell" in shown and "broken: SIGILL" in shown
    assert engine_label(None) == "not checked"


def _accuracy(k: int, n: int) -> dict[str, object]:
    from shared.quality import wilson

    low, high = wilson(k, n, 0.95)
    return {"suite": "everyday-choice", "k": k, "n": n, "acc": k / n, "low": low, "high": high}


def test_verifiable_accuracy_is_shown_with_its_interval_and_what_it_can_tell(
    report: DemoReport,
) -> None:
    report.accuracy = {
        "pi4-01": {"smol": _accuracy(30, 108), "gemma": _accuracy(60, 108)},
        "pizero-01": {"smol": _accuracy(30, 108)},
    }
    shown = " ".join(_shown(report, width=120).split())
    assert "Verifiable quality" in shown and "28% [20, 37]" in shown
    notes = caveats(report)
    assert (
        "smol on pi4-01: 28% of 108 choice items [20, 37]%, not distinguishable from guessing"
        in (" ".join(notes))
    )
    assert "gemma on pi4-01: 56% of 108 choice items [46, 65]%, above guessing (25%)" in notes
    assert "the choice intervals of smol and gemma separate the two models on this suite" in notes
    assert notes[-1].startswith("what these numbers cannot tell")


def test_summary_shows_the_answer_through_the_gateway_and_its_device(report: DemoReport) -> None:
    through = {**report.answers["pi4-01"], "device_id": "pi4-01"}
    report.gateway_answer = through
    shown = " ".join(_shown(report).split())
    assert "Asked the fleet's gateway (model auto, one address):" in shown
    assert f"gateway -> pi4-01 ({through['model']})" in shown


ZERO_JUDGED = {"device_id": "pizero-01", "device_class": "pizero2w-512mb", "answers": 4}
PI4_JUDGED = {"device_id": "pi4-01", "device_class": "pi4-4gb", "answers": 8, "graded": 8}


def test_summary_says_which_device_judged_which_class_answers(report: DemoReport) -> None:
    report.judging = [
        {**PI4_JUDGED, "judged_by": {"pi4-01": "gemma3-270m-q4_k_m"}},
        {**ZERO_JUDGED, "graded": 4, "judged_by": {"pi4-01": "gemma3-270m-q4_k_m"}},
    ]
    shown = " ".join(_shown(report, width=160).split())
    assert "Judged answers: which device graded them, with which judge" in shown
    assert (
        "pizero-01 (pizero2w-512mb) 4 of 4 pi4-01 (pi4-4gb): gemma3-270m-q4_k_m "
        "off the device, in judge steps" in shown
    )
    assert (
        "pi4-01 (pi4-4gb) 8 of 8 pi4-01 (pi4-4gb): gemma3-270m-q4_k_m "
        "on the device, in its bench" in shown
    )
    assert not any("ungraded" in note for note in caveats(report))


def test_answers_still_ungraded_are_named_with_the_reason(report: DemoReport) -> None:
    why = "judge step judge-1 on pi4-01 error: judging with gemma3-270m-q4_k_m failed: OOM"
    report.judging = [{**ZERO_JUDGED, "graded": 1, "judged_by": {}, "pending": why}]
    shown = " ".join(_shown(report, width=200).split())
    assert f"pizero-01 (pizero2w-512mb) 1 of 4 - ungraded: {why}" in shown
    assert (
        "3 of 4 judged answer(s) of pizero-01 (pizero2w-512mb) were still ungraded when the "
        f"demo read the scores: {why}"
    ) in caveats(report)
