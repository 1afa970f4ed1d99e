from controller.planner.filters import build_views
from controller.planner.outlook import (
    bench_commands,
    class_calibrations,
    grading_for,
    profiling_outlooks,
)
from controller.planner.scores import compute_scores
from controller.planner.types import Device, Exclusion, PlannerSettings, ProfilingSettings
from shared.profiles import DeviceProfile
from tests.factories.planner import bench_run, model_spec, questions_for

SETTINGS = PlannerSettings(bootstrap_resamples=200)


def _profile(name: str, memory: int) -> DeviceProfile:
    return DeviceProfile(
        name=name,
        arch="aarch64",
        memory_budget_mb=memory,
        latency_budget_s=60,
        disk_budget_mb=50_000,
        threads=4,
        memory_bandwidth_gbs=8,
        compute_gflops=40,
    )


def _world():
    profiles = {"pi": _profile("pi", 3000), "pc": _profile("pc", 20000)}
    est = {"pi": 900.0, "pc": 1000.0}
    models = {
        "good": model_spec("good", 1.5, estimates=est),
        "weak": model_spec("weak", 0.5, estimates={"pi": 400.0, "pc": 450.0}),
        "huge": model_spec("huge", 13, estimates={"pi": 9000.0, "pc": 9500.0}),
        "unjudged": model_spec("unjudged", 1.0, estimates={"pi": 700.0, "pc": 800.0}),
    }
    pct = dict.fromkeys(("writing", "math"), (85.0, 90.0))
    weak = dict.fromkeys(("writing", "math"), (50.0, 52.0))
    runs = [
        bench_run(
            "good", "pc", questions_for(pct), peak_rss_mb=1000, decode_tok_s=20, prefill_tok_s=200
        ),
        bench_run(
            "weak", "pi", questions_for(weak), peak_rss_mb=420, decode_tok_s=25, prefill_tok_s=150
        ),
    ]
    devices = [Device(f"pi-{i}", "pi") for i in range(3)] + [Device("pc-0", "pc")]
    return profiles, models, runs, devices


def test_pairs_that_could_beat_the_class_best_are_profiled_first() -> None:
    profiles, models, runs, devices = _world()
    scores = compute_scores(profiles, models, runs, SETTINGS)
    views = build_views(scores, profiles, models, SETTINGS)
    cals = class_calibrations(profiles, runs, models, SETTINGS)
    outlooks = profiling_outlooks(views, scores, models, cals, devices, SETTINGS)
    pairs = {(o.model_id, o.device_class) for o in outlooks}
    assert ("good", "pi") in pairs and ("unjudged", "pi") in pairs
    assert ("huge", "pi") not in pairs  # cannot fit the Pi even by its estimate
    assert ("good", "pc") not in pairs  # already measured there
    excluded = profiling_outlooks(
        views,
        scores,
        models,
        cals,
        devices,
        SETTINGS,
        exclusions=[Exclusion("unjudged", device_class="pi"), Exclusion("good")],
    )
    kept = {(o.model_id, o.device_class) for o in excluded}
    assert kept == {p for p in pairs if p[0] != "good" and p != ("unjudged", "pi")}
    assert ("unjudged", "pc") in kept  # excluded on the Pi class only
    good_pi = next(o for o in outlooks if (o.model_id, o.device_class) == ("good", "pi"))
    assert good_pi.optimistic_psi > good_pi.current_best_psi and good_pi.devices == 3
    picks = bench_commands(outlooks, devices, limit=3)
    targets = [(pick.model_id, pick.device_id) for pick in picks]
    # A never-judged model is assumed at reference parity, so it goes first; then "good" on
    # the Pi class (3 devices); each pair on a different idle device.
    assert targets == [("unjudged", "pi-0"), ("good", "pi-1"), ("unjudged", "pc-0")]
    assert all(p.command.max_questions == 27 and p.command.refine for p in picks)
    assert "never judged: reference parity" in picks[0].reason
    assert "upper end of its quality interval" in picks[1].reason
    assert all(p.command.judge_model_id is None for p in picks)  # no grading given: speed only


def test_benches_are_judged_where_judge_and_reference_fit_and_skip_busy_devices() -> None:
    profiles, models, runs, devices = _world()
    models = {**models, "judge": model_spec("judge", 7, estimates={"pi": 4000.0, "pc": 4200.0})}
    profiling = ProfilingSettings(judge_model_id="judge", reference_model_id="good")
    grading = {n: grading_for(p, models, profiling, SETTINGS) for n, p in profiles.items()}
    assert (grading["pc"].judge_model_id, grading["pc"].reference_model_id) == ("judge", "good")
    assert grading["pi"].judge_model_id is None  # 4000 MB + 10 % does not fit a 3000 MB Pi
    assert "the judge judge needs ~4400 MB, pi has 3000 MB" in grading["pi"].note
    unset = grading_for(profiles["pc"], models, ProfilingSettings(), SETTINGS)
    assert unset.judge_model_id is None and "no judge and reference" in unset.note

    scores = compute_scores(profiles, models, runs, SETTINGS)
    views = build_views(scores, profiles, models, SETTINGS)
    cals = class_calibrations(profiles, runs, models, SETTINGS)
    outlooks = profiling_outlooks(views, scores, models, cals, devices, SETTINGS, questions=2)
    picks = bench_commands(
        outlooks, devices, limit=3, grading=grading, questions=2, busy={"pi-0", "pc-0"}
    )
    assert {p.device_id for p in picks} <= {"pi-1", "pi-2"}  # the busy ones get nothing
    assert picks and all(p.command.max_questions == 2 for p in picks)
    assert all(p.command.judge_model_id is None and "speed only" in p.reason for p in picks)
    on_pc = bench_commands(outlooks, devices, grading=grading)
    judged = [p for p in on_pc if p.device_class == "pc"]
    assert judged and all(p.command.reference_model_id == "good" for p in judged)
    assert all("judged by judge against the reference good" in p.reason for p in judged)
