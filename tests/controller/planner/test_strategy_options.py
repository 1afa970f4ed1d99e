"""Options are (model, strategy): I is the strategy's paired gain over direct, C its own time.

The brute force here recomputes every option's Psi from the definitions in
PERFICS.md (exact items whose reference is always right, so q is the share
right and I the paired difference in that share; C the median answer time
over the budget) and checks the planner's choice, including when the best
option is a strategy other than direct.
"""

from __future__ import annotations

import math
import statistics

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from controller.planner.assign import plan_devices
from controller.planner.filters import build_views
from controller.planner.predict import standard_tokens
from controller.planner.runner_up import strategy_runner_up
from controller.planner.scores import compute_scores
from controller.planner.types import BenchRun, Device, Option, PlannerSettings, stored_option
from shared.messages import AnswerLatency, QuestionResult
from shared.profiles import DeviceProfile
from tests.factories.planner import model_spec

BUDGET_S = 60.0
STRATEGIES = ("refine:1", "verify-refine", "vote:5")
SETTINGS = PlannerSettings(bootstrap_resamples=50)
PROFILE = DeviceProfile(
    name="c1",
    arch="aarch64",
    memory_budget_mb=4000,
    latency_budget_s=BUDGET_S,
    disk_budget_mb=100_000,
    threads=1,
    memory_bandwidth_gbs=4,
    compute_gflops=10,
)


def _row(item: int, strategy: str, correct: bool, seconds: float) -> QuestionResult:
    return QuestionResult(
        item_id=f"q{item}", type="exact", category="math", refined=strategy != "direct",
        strategy=strategy, correct=correct, reference_correct=True, e2e_ms=seconds * 1000,
        generated_tokens=PROFILE.standard_answer_tokens, prompt_tokens_evaluated=10,
    )  # fmt: skip


def _run(model_id: str, rows: dict[str, list[tuple[bool, float]]]) -> BenchRun:
    """One run; direct's latency is the median of its items, at the standard answer length."""
    direct_s = [s for _, s in rows["direct"]]
    p50, p95 = statistics.median(direct_s) * 1000, max(direct_s) * 1000
    zero_shot = AnswerLatency(
        ttft_ms_p50=1, ttft_ms_p95=1, e2e_ms_p50=p50, e2e_ms_p95=p95,
        generated_tokens_mean=PROFILE.standard_answer_tokens, n=len(direct_s),
    )  # fmt: skip
    questions = tuple(
        _row(i, strategy, ok, s)
        for strategy, items in rows.items()
        for i, (ok, s) in enumerate(items)
    )
    return BenchRun(
        model_id=model_id, device_class="c1", peak_rss_mb=300, prefill_tok_s=100,
        decode_tok_s=20, zero_shot=zero_shot, questions=questions,
    )  # fmt: skip


def _brute_psi(rows: dict[str, list[tuple[bool, float]]], strategy: str) -> float:
    """exp(B + I - C/10), the default weights with E = 0, straight from the definitions."""
    direct = [ok for ok, _ in rows["direct"]]
    b = sum(direct) / len(direct)
    mine = rows[strategy]
    i = 0.0 if strategy == "direct" else (sum(ok for ok, _ in mine) - sum(direct)) / len(direct)
    c = statistics.median(s for _, s in mine) / BUDGET_S
    return math.exp(b + i - c / 10)


def _plan(runs: list[BenchRun]):  # type: ignore[no-untyped-def]
    models = {r.model_id: model_spec(r.model_id, 0.2) for r in runs}
    scores = compute_scores({"c1": PROFILE}, models, runs, SETTINGS)
    views = build_views(scores, {"c1": PROFILE}, models, SETTINGS)
    [decision] = plan_devices([Device("d1", "c1")], views, models, SETTINGS)
    return scores["c1"], decision


answers = st.tuples(st.booleans(), st.floats(0.5, 20.0))


@st.composite
def measured_models(draw: st.DrawFn) -> dict[str, dict[str, list[tuple[bool, float]]]]:
    """Per model: direct and some strategies, each answering the same n items."""
    out = {}
    for model_id in draw(st.lists(st.sampled_from(["m-a", "m-b"]), min_size=1, unique=True)):
        n = draw(st.integers(4, 12))
        chosen = draw(st.lists(st.sampled_from(STRATEGIES), min_size=1, max_size=3, unique=True))
        rows = {s: draw(st.lists(answers, min_size=n, max_size=n)) for s in ("direct", *chosen)}
        assume(any(ok for ok, _ in rows["direct"]))  # B needs a scored, non-zero direct share
        out[model_id] = rows
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(measured_models())
def test_the_chosen_option_is_the_brute_force_best_over_models_and_strategies(
    world: dict[str, dict[str, list[tuple[bool, float]]]],
) -> None:
    psi = {Option(m, s): _brute_psi(rows, s) for m, rows in world.items() for s in rows}
    ranked = sorted(psi.values(), reverse=True)
    assume(len(ranked) == 1 or ranked[0] - ranked[1] > 1e-9)  # no ties to break
    scores, decision = _plan([_run(m, rows) for m, rows in world.items()])
    assert {s.option: s.psi for s in scores} == {o: _approx(p) for o, p in psi.items()}
    best = max(psi, key=lambda o: psi[o])
    assert decision.option == best
    reason = strategy_runner_up(decision)
    assert reason is not None and reason.startswith(f"strategy runner-up on {best.model_id}:")
    rivals = {o: p for o, p in psi.items() if o.model_id == best.model_id and o != best}
    if rivals:  # the best other strategy of that model (any of several tied ones)
        top = max(rivals.values())
        named = {o.strategy for o, p in rivals.items() if math.isclose(p, top, rel_tol=1e-9)}
        assert any(f" {n} lost to {best.strategy}, Psi" in reason for n in named), reason


class _approx(float):
    """A float that equals another within 1e-9 relative (the bootstrap does not touch values)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, float) and math.isclose(self, other, rel_tol=1e-9)

    __hash__ = float.__hash__


@settings(max_examples=40, deadline=None)
@given(
    st.integers(4, 12).flatmap(
        lambda n: st.tuples(
            st.lists(answers, min_size=n, max_size=n),
            st.lists(st.booleans(), min_size=n, max_size=n),
            st.sampled_from(STRATEGIES),
            st.floats(0.0, 2.0),
        )
    )
)
def test_a_strategy_that_fixes_items_for_little_time_is_chosen_over_direct(
    case: tuple[list[tuple[bool, float]], list[bool], str, float],
) -> None:
    direct, fixes, strategy, extra_s = case
    fixed = [fix and not ok for fix, (ok, _) in zip(fixes, direct, strict=True)]
    assume(any(ok for ok, _ in direct) and any(fixed))
    # right wherever direct was, and on at least one more item; at most 2 s slower each
    better = [(ok or fix, s + extra_s) for (ok, s), fix in zip(direct, fixes, strict=True)]
    scores, decision = _plan([_run("m-a", {"direct": direct, strategy: better})])
    assert decision.option == Option("m-a", strategy)
    by = {s.option.strategy: s for s in scores}
    assert by[strategy].i > 0 and by["direct"].i == 0
    assert by[strategy].c >= by["direct"].c - 1e-12  # never cheaper (up to rounding)
    reason = strategy_runner_up(decision)
    assert reason is not None and f"direct lost to {strategy}" in reason


def test_a_strategy_that_only_costs_loses_and_the_reason_says_on_what() -> None:
    direct = [(i % 2 == 0, 4.0) for i in range(10)]
    same_but_slow = [(ok, 40.0) for ok, _ in direct]
    _, decision = _plan([_run("m-a", {"direct": direct, "vote:5": same_but_slow})])
    assert decision.option == Option("m-a", "direct")
    reason = strategy_runner_up(decision)
    assert reason is not None
    assert "strategy runner-up on m-a: vote:5 lost to direct" in reason
    # same items right (I 0), ten times the device time: C 40/60 against 4/60
    assert "(I +0.000 [+0.000, +0.000], C 0.667 vs I +0.000, C 0.067)" in reason


def test_predicted_tokens_follow_each_strategy_stage_structure() -> None:
    prompt, answer = PROFILE.standard_prompt_tokens, PROFILE.standard_answer_tokens
    instr, frac = SETTINGS.refine_instruction_tokens, SETTINGS.critique_tokens_frac
    tokens = {s: standard_tokens(PROFILE, SETTINGS, strategy=s) for s in
              ("direct", "refine:1", "refine:2", "verify-refine", "vote:5")}  # fmt: skip
    assert tokens["direct"] == (prompt, answer)
    assert tokens["refine:2"] == (prompt + 4 * instr, answer * (1 + 2 * (1 + frac)))
    assert tokens["verify-refine"] == tokens["refine:1"]  # costed as one full round, its bound
    assert tokens["vote:5"] == (prompt, 5 * answer)  # the samples share one prefill


def test_options_stored_before_strategies_are_read_by_their_refine_flag() -> None:
    assert stored_option("m", None, True) == Option("m", "refine:1")  # a device or pin row
    assert stored_option("m", True) == Option("m", "refine:1")  # a rollout's [model, refine]
    assert stored_option("m", False) == Option("m", "direct")
    assert stored_option("m", "vote:5", False) == Option("m", "vote:5")
