import math

import pytest

from controller.planner.predict import calibrate, predicted_latency, standard_tokens
from controller.planner.scores import compute_scores, hardware_independent_view
from controller.planner.types import Option, PlannerSettings
from shared.perfics import perfics_score
from tests.factories.planner import bench_run, load_profiles, model_spec, questions_for, table3

SETTINGS = PlannerSettings(bootstrap_resamples=200)


def _pct(model: str) -> dict[str, tuple[float, float]]:
    return {k: (v[1], v[2]) for k, v in table3()[model].items()}


@pytest.fixture
def world():
    profiles = {n: p for n, p in load_profiles().items() if n in ("pi5-8gb", "cheap-pc-8gb")}
    models = {
        "vicuna-7b": model_spec("vicuna-7b", 7, estimates={"pi5-8gb": 4300, "cheap-pc-8gb": 4400}),
        "airoboros-7b": model_spec("airoboros-7b", 7, estimates={"pi5-8gb": 4300}),
    }
    runs = [
        bench_run(
            "vicuna-7b",
            "pi5-8gb",
            questions_for(_pct("Vicuna-7B")),
            peak_rss_mb=4100,
            decode_tok_s=2.0,
            prefill_tok_s=8.0,
        ),
        bench_run(
            "airoboros-7b",
            "cheap-pc-8gb",
            questions_for(_pct("Airoboros-7B")),
            peak_rss_mb=4200,
            decode_tok_s=3.5,
            prefill_tok_s=20.0,
        ),
    ]
    return profiles, models, runs


def test_measured_pair_scores_follow_the_perfics_formula(world) -> None:
    profiles, models, runs = world
    scores = compute_scores(profiles, models, runs, SETTINGS)
    by = {s.option: s for s in scores["pi5-8gb"]}
    off, on = by[Option("vicuna-7b")], by[Option("vicuna-7b", "refine:1")]
    assert off.b == pytest.approx(0.8418, abs=2e-4) and off.i == 0.0
    assert on.i == pytest.approx(0.0879, abs=2e-4)
    assert off.memory_mb == 4100 and off.memory_measured
    assert not off.predicted and not off.quality_pooled
    # 128 prompt tokens at 8 tok/s + 256 answer tokens at 2 tok/s = 144 s at p50
    assert off.latency.p50_s == pytest.approx(144.0)
    assert off.c == pytest.approx(144.0 / 45)
    assert off.psi == pytest.approx(perfics_score(off.b, 0, 0, off.c))
    assert on.psi == pytest.approx(perfics_score(on.b, on.i, 0, on.c))
    assert on.latency.p95_s > off.latency.p95_s
    assert off.b_interval.low < off.b < off.b_interval.high
    assert on.i_interval is not None and on.i_interval.low < on.i < on.i_interval.high


def test_unmeasured_pair_borrows_quality_and_predicts_latency_from_the_class(world) -> None:
    profiles, models, runs = world
    scores = compute_scores(profiles, models, runs, SETTINGS)
    airo = {s.option: s for s in scores["pi5-8gb"]}[Option("airoboros-7b")]
    assert airo.quality_pooled and airo.predicted
    assert airo.memory_mb == 4300 and not airo.memory_measured
    # Same weight bytes as vicuna on this class: the calibrated bandwidth predicts 2 tok/s.
    assert airo.latency.p50_s == pytest.approx(144.0, rel=1e-6)
    assert airo.latency.upper_s(1.645) > airo.latency.p95_s
    assert airo.b == pytest.approx(0.8161, abs=2e-4)


def test_model_without_any_judged_question_has_no_score(world) -> None:
    profiles, models, runs = world
    models = {**models, "new": model_spec("new", 1)}
    scores = compute_scores(profiles, models, runs, SETTINGS)
    assert all(s.option.model_id != "new" for ss in scores.values() for s in ss)


def test_leaderboard_is_sorted_by_psi_with_deterministic_ties(world) -> None:
    profiles, models, runs = world
    first = compute_scores(profiles, models, runs, SETTINGS)
    for class_scores in first.values():
        psis = [s.psi for s in class_scores]
        assert psis == sorted(psis, reverse=True)
    assert compute_scores(profiles, models, runs, SETTINGS) == first


def test_calibration_falls_back_to_the_profiles_nominal_bandwidth() -> None:
    profiles = load_profiles()
    pi4 = profiles["pi4-4gb"]
    spec = model_spec("m", 1)
    cal = calibrate(pi4, [], {"m": spec}, SETTINGS)
    assert cal.n_runs == 0 and cal.bandwidth_gbs == pi4.memory_bandwidth_gbs
    lat = predicted_latency(
        spec,
        pi4,
        cal,
        SETTINGS,
    )
    decode = pi4.memory_bandwidth_gbs * 1e9 / spec.weights_bytes
    prefill = pi4.compute_gflops * 1e9 / (2 * spec.parameters)
    assert lat.p50_s == pytest.approx(128 / prefill + 256 / decode)
    assert lat.predicted and lat.sigma == SETTINGS.nominal_sigma
    refined = predicted_latency(spec, pi4, cal, SETTINGS, strategy="refine:1")
    pre, dec = standard_tokens(pi4, SETTINGS, strategy="refine:1")
    assert refined.p50_s == pytest.approx(pre / prefill + dec / decode)
    assert refined.p50_s > 2 * lat.p50_s


def test_calibration_ignores_contended_runs() -> None:
    profiles = load_profiles()
    pi4 = profiles["pi4-4gb"]
    spec = model_spec("m", 1)
    quiet = bench_run("m", "pi4-4gb", [], peak_rss_mb=700, decode_tok_s=5.0)
    noisy = bench_run("m", "pi4-4gb", [], peak_rss_mb=700, decode_tok_s=1.0)
    noisy = type(noisy)(**{**noisy.__dict__, "contended": True})
    cal = calibrate(pi4, [quiet, noisy], {"m": spec}, SETTINGS)
    assert cal.bandwidth_gbs == pytest.approx(5.0 * spec.weights_bytes / 1e9)
    assert cal.n_runs == 1


def test_hardware_independent_view_uses_memory_in_gb(world) -> None:
    profiles, models, runs = world
    rows = hardware_independent_view(compute_scores(profiles, models, runs, SETTINGS))
    row = next(r for r in rows if r.option == Option("vicuna-7b", "refine:1"))
    assert row.memory_gb == pytest.approx(4.4)  # the larger footprint: cheap-pc's estimate
    assert row.psi_memory == pytest.approx(math.exp(row.b + row.i) / math.exp(0.1 * 4.4))


def test_a_measured_pair_with_no_judged_question_still_borrows_pooled_quality(world) -> None:
    # A device bench without a reference model stores questions with no judge scores:
    # the pair is measured for speed and memory, but its quality must come from the pool.
    profiles, models, runs = world
    unjudged = [
        q.model_copy(update={"judge_score": None, "reference_judge_score": None})
        for q in runs[0].questions
    ]
    assert unjudged
    speed_only = bench_run("airoboros-7b", "pi5-8gb", unjudged, peak_rss_mb=4100)
    scores = compute_scores(profiles, models, [*runs, speed_only], SETTINGS)
    airo = {s.option: s for s in scores["pi5-8gb"]}[Option("airoboros-7b")]
    assert airo.quality_pooled and airo.memory_measured
    assert airo.b == pytest.approx(0.8161, abs=2e-4)
