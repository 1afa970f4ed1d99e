from controller.planner.filters import class_filter, device_context, device_rejection
from controller.planner.types import Device, Exclusion, Option, Pin, PlannerSettings
from shared.profiles import DeviceProfile
from tests.factories.planner import model_spec, option_score

SETTINGS = PlannerSettings()
PROFILE = DeviceProfile(
    name="small",
    arch="aarch64",
    memory_budget_mb=1500,
    latency_budget_s=60,
    disk_budget_mb=3000,
    threads=4,
    memory_bandwidth_gbs=4,
    compute_gflops=10,
)
MODELS = {
    "big": model_spec("big", 3),
    "small": model_spec("small", 0.5),
    "x86": model_spec("x86", 0.5).__class__(
        **{**model_spec("x86", 0.5).__dict__, "archs": frozenset({"x86_64"})}
    ),
    "huge-file": model_spec("huge-file", 6),
}


def test_memory_rejection_says_need_and_budget() -> None:
    big = option_score("small", "big", "direct", psi=2.0, memory_mb=1727, p95_s=10)
    ok = option_score("small", "small", "direct", psi=1.5, memory_mb=400, p95_s=10)
    survivors, reasons = class_filter([big, ok], PROFILE, MODELS, SETTINGS)
    assert survivors == [ok]
    reason = reasons[Option("big")]
    assert reason.filter == "memory"
    assert reason.reason == "needs 1.90 GB (measured 1727 MB + 10% margin), budget 1.50 GB"


def test_latency_rejection_counts_refinement_and_widens_predictions() -> None:
    slow = option_score("small", "small", "refine:1", psi=2.0, memory_mb=400, p95_s=61)
    pred = option_score(
        "small", "small", "direct", psi=2.0, memory_mb=400, p95_s=50, predicted=True
    )
    pred = pred.__class__(
        **{
            **pred.__dict__,
            "latency": pred.latency.__class__(p50_s=40, p95_s=50, predicted=True, sigma=0.3),
        }
    )
    survivors, reasons = class_filter([slow, pred], PROFILE, MODELS, SETTINGS)
    assert survivors == []
    assert reasons[Option("small", "refine:1")].reason == (
        "measured p95 61.0 s (every stage of refine:1), latency budget 60 s"
    )
    assert reasons[Option("small")].reason.startswith("predicted p95 upper bound 81.")


def test_arch_disk_and_class_exclusion() -> None:
    scores = [
        option_score("small", "x86", "direct", psi=3.0, memory_mb=400, p95_s=10),
        option_score("small", "huge-file", "direct", psi=2.5, memory_mb=400, p95_s=10),
        option_score("small", "small", "direct", psi=2.0, memory_mb=400, p95_s=10),
    ]
    survivors, reasons = class_filter(
        scores, PROFILE, MODELS, SETTINGS, [Exclusion("small", device_class="small")]
    )
    assert survivors == []
    assert reasons[Option("x86")].reason == "built for x86_64, class is aarch64"
    assert reasons[Option("huge-file")].reason == "file 3.38 GB, disk budget 3.00 GB"
    assert reasons[Option("small")].filter == "excluded"


def test_free_memory_counts_what_unloading_the_current_model_frees() -> None:
    score = option_score("small", "small", "direct", psi=2.0, memory_mb=1000, p95_s=10)
    tight = Device("d1", "small", mem_available_mb=900, rss_mb=0)
    freed = Device("d2", "small", mem_available_mb=900, rss_mb=400)
    r = device_rejection(score, device_context(tight, [], {}), MODELS, SETTINGS)
    assert r is not None and r.filter == "free-memory"
    assert "needs 1.10 GB, device has 0.90 GB free" in r.reason
    assert device_rejection(score, device_context(freed, [], {}), MODELS, SETTINGS) is None


def test_disk_free_is_not_needed_for_a_cached_model() -> None:
    score = option_score("small", "big", "direct", psi=2.0, memory_mb=100, p95_s=10)
    full = Device("d1", "small", disk_free_mb=1000)
    cached = Device("d2", "small", disk_free_mb=1000, cached_models=frozenset({"big"}))
    r = device_rejection(score, device_context(full, [], {}), MODELS, SETTINGS)
    assert r is not None and r.filter == "disk-free" and "download 1.69 GB" in r.reason
    assert device_rejection(score, device_context(cached, [], {}), MODELS, SETTINGS) is None


def test_pins_and_device_exclusions() -> None:
    small = option_score("small", "small", "direct", psi=2.0, memory_mb=100, p95_s=10)
    small_r = option_score("small", "small", "refine:1", psi=2.0, memory_mb=100, p95_s=10)
    dev = Device("d1", "small")
    pins = {"d1": Pin("d1", "small", strategy="refine:1")}
    ctx = device_context(dev, [Exclusion("big", device_id="d1")], pins)
    assert device_rejection(small_r, ctx, MODELS, SETTINGS) is None
    r = device_rejection(small, ctx, MODELS, SETTINGS)
    assert r is not None and r.reason == "device is pinned to small refine:1"
    big = option_score("small", "big", "direct", psi=2.0, memory_mb=100, p95_s=10)
    ctx2 = device_context(dev, [Exclusion("big", device_id="d1")], {})
    r2 = device_rejection(big, ctx2, MODELS, SETTINGS)
    assert r2 is not None and r2.filter == "excluded"
