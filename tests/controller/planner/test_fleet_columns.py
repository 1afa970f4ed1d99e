"""The fleet program's column restriction: still feasible, never better than the optimum, cheap."""

from dataclasses import replace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.planner.fleet import FleetConstraints
from controller.planner.fleet_columns import class_blocks, group_columns, offer
from controller.planner.types import Device, Option, PlannerSettings
from tests.controller.planner.strategies import (
    World,
    _profile,
    brute_force,
    constraints,
    satisfies,
    worlds,
)
from tests.factories.planner import model_spec, option_score


@settings(max_examples=150, deadline=None)
@given(worlds(max_devices=4), constraints(), st.integers(1, 2), st.integers(0, 2))
def test_restricted_columns_stay_feasible_and_never_beat_the_brute_force_optimum(
    world: World, cons: FleetConstraints, columns: int, cover: int
) -> None:
    world = replace(
        world,
        settings=world.settings.model_copy(update={"milp_columns": columns, "milp_cover": cover}),
    )
    result = world.plan_fleet(cons)
    best = brute_force(world, cons)
    if best is None:
        assert result.status.startswith("infeasible")
        return
    assert result.status == "optimal", result.status
    assert satisfies(world, cons, result.decisions)
    assert result.objective <= best + 1e-6


def _cover_world() -> World:
    """Device d0 cannot fit m-a, so moving it to m-c costs the least Psi (1.9 - 1.0)."""
    scores = {
        "c1": [
            option_score("c1", "m-a", "direct", psi=2.0, memory_mb=900, p95_s=10),
            option_score("c1", "m-b", "direct", psi=1.9, memory_mb=300, p95_s=10),
            option_score("c1", "m-c", "direct", psi=1.0, memory_mb=300, p95_s=10),
        ]
    }
    devices = [
        Device(f"d{i}", "c1", mem_available_mb=600.0 if i == 0 else 2000.0) for i in range(6)
    ]
    return World(
        profiles={"c1": _profile("c1", 2000, 60)},
        models={m: model_spec(m, 0.5) for m in ("m-a", "m-b", "m-c")},
        scores=scores,
        devices=devices,
        pins={},
        settings=PlannerSettings(milp_columns=1, milp_cover=2),
        conformance={},
    )


def _offered(world: World, model_id: str) -> list[str]:
    blocks, _ = class_blocks(
        world.devices,
        world.views(),
        world.models,
        world.settings,
        exclusions=(),
        pins={},
        lows={},
        categories=(),
    )
    offer(blocks, {model_id: 1}, world.settings.milp_columns, world.settings.milp_cover)
    groups, _ = group_columns(blocks)
    return sorted(
        d.device_id
        for g in groups
        if model_id in {s.option.model_id for s in g.options}
        for d in g.devices
    )


def test_a_constrained_model_is_offered_where_it_costs_least_up_to_the_cover() -> None:
    world = _cover_world()
    assert _offered(world, "m-c") == ["d0", "d1"]  # d0 loses least, then the lowest id
    everywhere = replace(world, settings=world.settings.model_copy(update={"milp_cover": 0}))
    assert _offered(everywhere, "m-c") == [f"d{i}" for i in range(6)]


def test_min_count_is_met_with_the_cheapest_device() -> None:
    world = _cover_world()
    result = world.plan_fleet(FleetConstraints(min_devices_per_model={"m-c": 1}))
    chosen = {d.device_id: d.option.model_id for d in result.decisions}
    assert chosen == {"d0": "m-c", **{f"d{i}": "m-a" for i in range(1, 6)}}


def test_an_infeasible_restricted_program_is_solved_again_with_every_column() -> None:
    """m-a is best on math, m-b on writing, m-c second on both; mixes of m-a and m-b fail.

    With one column per device the restricted program offers only m-a (top Psi
    and best math bound) and m-b (best writing bound): no mix of them meets both
    floors, so the plan the retry finds must use m-c, and it is the optimum.
    """
    world = _cover_world()
    world.devices = [Device(f"d{i}", "c1") for i in range(3)]
    world.conformance = {
        Option("m-a"): {"math": (100, 100), "writing": (0, 100)},
        Option("m-b"): {"math": (0, 100), "writing": (100, 100)},
        Option("m-c"): {"math": (75, 100), "writing": (75, 100)},
    }
    cons = FleetConstraints(quality_floor={"math": 0.5, "writing": 0.5})
    result = world.plan_fleet(cons)
    assert result.status == "optimal", result.status
    assert "m-c" in {d.option.model_id for d in result.decisions}
    assert satisfies(world, cons, result.decisions)
    assert np.isclose(result.objective, brute_force(world, cons))
