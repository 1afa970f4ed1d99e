from hypothesis import given, settings
from hypothesis import strategies as st

from controller.planner.assign import plan_devices
from controller.planner.fleet import FleetConstraints
from controller.planner.types import Device, Option
from tests.controller.planner.strategies import (
    World,
    brute_force,
    constraints,
    feasible_options,
    value,
    worlds,
)
from tests.factories.planner import option_score


def _plan(world: World):
    return plan_devices(world.devices, world.views(), world.models, world.settings, pins=world.pins)


def _total(world: World, decisions) -> float:
    by_id = {d.device_id: d for d in world.devices}
    return sum(value(world, by_id[x.device_id], x.chosen) for x in decisions if x.chosen)


@settings(max_examples=150, deadline=None)
@given(worlds())
def test_per_device_objective_equals_the_brute_force_optimum(world: World) -> None:
    best = brute_force(world, FleetConstraints())
    assert abs(_total(world, _plan(world)) - (best or 0.0)) < 1e-9


@settings(max_examples=150, deadline=None)
@given(worlds())
def test_no_plan_violates_memory_or_latency_budgets_and_pins_hold(world: World) -> None:
    by_id = {d.device_id: d for d in world.devices}
    for decision in _plan(world):
        device = by_id[decision.device_id]
        feasible = feasible_options(world, device)
        if decision.chosen is None:
            assert feasible == []
            continue
        profile = world.profiles[device.device_class]
        need = decision.chosen.memory_mb * 1.1
        assert need <= profile.memory_budget_mb
        assert decision.chosen.latency.p95_s <= profile.latency_budget_s
        if device.mem_available_mb is not None:
            assert need <= device.mem_available_mb + (device.rss_mb or 0) - 64
        pin = world.pins.get(device.device_id)
        if pin is not None:
            assert decision.chosen.option.model_id == pin.model_id


@settings(max_examples=100, deadline=None)
@given(worlds())
def test_same_input_gives_the_same_plan(world: World) -> None:
    first = [(d.device_id, d.option, d.note) for d in _plan(world)]
    shuffled = World(**{**world.__dict__, "devices": list(reversed(world.devices))})
    assert [(d.device_id, d.option, d.note) for d in _plan(shuffled)] == first


@settings(max_examples=120, deadline=None)
@given(worlds(max_devices=4), constraints())
def test_fleet_milp_objective_equals_the_brute_force_optimum(world: World, cons) -> None:
    result = world.plan_fleet(cons)
    best = brute_force(world, cons)
    if best is None:
        assert result.status.startswith("infeasible")
        return
    assert result.status == "optimal"
    assert abs(result.objective - best) < 1e-6
    assert abs(_total(world, result.decisions) - best) < 1e-6


@settings(max_examples=60, deadline=None)
@given(worlds(max_devices=4))
def test_fleet_milp_without_constraints_agrees_with_the_per_device_choice(world: World) -> None:
    result = world.plan_fleet(FleetConstraints())
    assert abs(_total(world, result.decisions) - _total(world, _plan(world))) < 1e-6


def _one_class_world(current=None, hysteresis=0.02):
    from controller.planner.types import PlannerSettings
    from tests.controller.planner.strategies import _profile
    from tests.factories.planner import model_spec

    scores = {
        "c1": [
            option_score("c1", "m-a", "direct", psi=2.00, memory_mb=500, p95_s=10),
            option_score("c1", "m-b", "direct", psi=1.99, memory_mb=500, p95_s=10),
            option_score("c1", "m-c", "direct", psi=1.50, memory_mb=9000, p95_s=10),
        ]
    }
    return World(
        profiles={"c1": _profile("c1", 2000, 60)},
        models={m: model_spec(m, 0.5) for m in ("m-a", "m-b", "m-c")},
        scores=scores,
        devices=[Device("d0", "c1", current=current)],
        pins={},
        settings=PlannerSettings(hysteresis=hysteresis),
        conformance={},
    )


def test_hysteresis_keeps_a_near_equal_current_model_and_names_the_runner_up() -> None:
    [kept] = _plan(_one_class_world(current=Option("m-b")))
    assert kept.option == Option("m-b") and kept.kept_current
    assert kept.runner_up is not None and kept.runner_up.option == Option("m-a")
    [moved] = _plan(_one_class_world(current=Option("m-b"), hysteresis=0.0))
    assert moved.option == Option("m-a")


def test_decision_reasons_cover_every_other_option_with_numbers() -> None:
    [d] = _plan(_one_class_world())
    reasons = d.reasons()
    assert any(r.startswith("m-c: needs 9.90 GB") and "budget 2.00 GB" in r for r in reasons)
    assert "m-b: feasible, Psi 1.9900 < chosen 2.0000" in reasons
    assert d.note == "best Psi"


def test_min_devices_per_model_moves_a_device_off_its_best_option() -> None:
    world = _one_class_world()
    world.devices = [Device(f"d{i}", "c1") for i in range(3)]
    result = world.plan_fleet(FleetConstraints(min_devices_per_model={"m-b": 1}))
    options = [d.option.model_id for d in result.decisions]
    assert sorted(options) == ["m-a", "m-a", "m-b"]
    assert [d.note for d in result.decisions if d.option.model_id == "m-b"] == ["fleet constraint"]


def test_change_cap_limits_devices_moving_at_once() -> None:
    world = _one_class_world(hysteresis=0.0)
    world.devices = [Device(f"d{i}", "c1", current=Option("m-b")) for i in range(4)]
    result = world.plan_fleet(FleetConstraints(max_changes=1))
    assert sum(d.option != Option("m-b") for d in result.decisions) == 1


@given(st.just(None))
def test_infeasible_fleet_constraints_are_reported_not_raised(_) -> None:
    world = _one_class_world()
    result = world.plan_fleet(FleetConstraints(min_devices_per_model={"m-a": 1, "m-b": 1}))
    assert result.status.startswith("infeasible") and result.decisions == []


def test_a_device_whose_engine_cannot_run_models_is_left_unplanned_with_the_reason() -> None:
    world = _one_class_world()
    why = "the engine check died: SIGILL (an instruction this CPU does not have); fix: ..."
    world.devices = [Device("d0", "c1"), Device("d1", "c1", engine_problem=why)]
    per_device = _plan(world)
    fleet = world.plan_fleet(FleetConstraints()).decisions
    for decisions in (per_device, fleet):
        healthy, broken = sorted(decisions, key=lambda d: d.device_id)
        assert healthy.option == Option("m-a")
        assert broken.option is None and broken.chosen is None
        assert broken.note == f"engine cannot run models: {why}"
