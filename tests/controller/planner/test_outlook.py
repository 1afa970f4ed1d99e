from controller.planner.assign import build_views
from controller.planner.outlook import bench_commands, class_calibrations, profiling_outlooks
from controller.planner.scores import compute_scores
from controller.planner.types import Device, PlannerSettings
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
    good_pi = next(o for o in outlooks if (o.model_id, o.device_class) == ("good", "pi"))
    assert good_pi.optimistic_psi > good_pi.current_best_psi and good_pi.devices == 3
    commands = bench_commands(outlooks, devices, limit=3)
    targets = [(cmd.model_ids[0], device) for device, cmd in commands]
    # A never-judged model is assumed at reference parity, so it goes first; then "good" on
    # the Pi class (3 devices); each pair on a different idle device.
    assert targets == [("unjudged", "pi-0"), ("good", "pi-1"), ("unjudged", "pc-0")]
    assert all(cmd.max_questions == 27 and cmd.refine for _, cmd in commands)
