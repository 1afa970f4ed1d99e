"""Where judged answers are graded: the pure choice of the judge's device."""

from __future__ import annotations

from dataclasses import replace

from controller.planner.judging import choose_judge_site, judge_speed
from controller.planner.types import Device, PlannerSettings
from shared.profiles import DeviceProfile
from tests.factories.planner import bench_run, model_spec

SETTINGS = PlannerSettings()


def _profile(name: str, memory: int, bandwidth: float = 8) -> DeviceProfile:
    return DeviceProfile(
        name=name,
        arch="aarch64",
        memory_budget_mb=memory,
        latency_budget_s=60,
        disk_budget_mb=50_000,
        threads=4,
        memory_bandwidth_gbs=bandwidth,
        compute_gflops=40,
    )


PROFILES = {
    "pizero": _profile("pizero", 400, bandwidth=2),
    "pi4": _profile("pi4", 3000, bandwidth=4),
    "pc": _profile("pc", 12000, bandwidth=20),
}
JUDGE = model_spec("judge", 1.0, estimates={"pizero": 700.0, "pi4": 800.0, "pc": 800.0})


def _device(device_id: str, device_class: str, **fields: object) -> Device:
    return Device(device_id=device_id, device_class=device_class, arch="aarch64", **fields)  # type: ignore[arg-type]


def test_the_fastest_class_that_fits_the_judge_grades_and_a_pi_zero_never_does() -> None:
    devices = [_device("zero-1", "pizero"), _device("pi-1", "pi4"), _device("pc-1", "pc")]
    site = choose_judge_site(JUDGE, devices, PROFILES, [], SETTINGS)
    assert site is not None and site.device_id == "pc-1"
    assert not site.measured and "2 device(s)" in site.reason  # the Pi Zero is not a candidate
    only_zero = choose_judge_site(JUDGE, [devices[0]], PROFILES, [], SETTINGS)
    assert only_zero is None


def test_a_measured_judge_speed_outranks_the_nominal_estimate() -> None:
    devices = [_device("pi-1", "pi4"), _device("pc-1", "pc")]
    nominal_pc, measured = judge_speed(JUDGE, PROFILES["pc"], [])
    assert not measured
    runs = [bench_run("judge", "pi4", [], peak_rss_mb=800, decode_tok_s=nominal_pc * 2)]
    site = choose_judge_site(JUDGE, devices, PROFILES, runs, SETTINGS)
    assert site is not None and site.device_id == "pi-1"
    assert site.measured and site.decode_tok_s == nominal_pc * 2


def test_offline_busy_broken_and_foreign_devices_are_passed_over() -> None:
    devices = [
        _device("pc-off", "pc", online=False),
        _device("pc-busy", "pc"),
        _device("pc-broken", "pc", engine_problem="SIGILL in the smoke test"),
        _device("pi-1", "pi4"),
    ]
    site = choose_judge_site(JUDGE, devices, PROFILES, [], SETTINGS, busy={"pc-busy"})
    assert site is not None and site.device_id == "pi-1"
    x86_only = replace(JUDGE, archs=frozenset({"x86_64"}))
    assert choose_judge_site(x86_only, devices, PROFILES, [], SETTINGS) is None


def test_among_equals_the_device_already_holding_the_judge_wins() -> None:
    devices = [_device("pc-a", "pc"), _device("pc-b", "pc", cached_models=frozenset({"judge"}))]
    site = choose_judge_site(JUDGE, devices, PROFILES, [], SETTINGS)
    assert site is not None and site.device_id == "pc-b"


def test_the_memory_margin_counts_against_the_budget() -> None:
    tight = model_spec("judge", 1.0, estimates={"pi4": 2800.0})  # 2800 x 1.1 > 3000
    assert choose_judge_site(tight, [_device("pi-1", "pi4")], PROFILES, [], SETTINGS) is None
    loose = PlannerSettings(memory_margin_frac=0.0)
    assert choose_judge_site(tight, [_device("pi-1", "pi4")], PROFILES, [], loose) is not None
