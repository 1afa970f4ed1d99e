import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.planner.filters import device_context, device_rejection
from controller.planner.matrix import feasibility_matrix
from controller.planner.types import Exclusion
from tests.controller.planner.strategies import MODEL_IDS, World, worlds


@st.composite
def rich_worlds(draw: st.DrawFn) -> tuple[World, list[Exclusion]]:
    world = draw(worlds(max_devices=6))
    world.models = {
        m: dataclasses.replace(
            spec, archs=draw(st.sampled_from([None, frozenset({"aarch64"}), frozenset({"x86_64"})]))
        )
        for m, spec in world.models.items()
    }
    world.devices = [
        dataclasses.replace(
            d,
            arch=draw(st.sampled_from([None, "aarch64", "x86_64"])),
            disk_free_mb=draw(st.one_of(st.none(), st.floats(0, 1200))),
            cached_models=frozenset(draw(st.lists(st.sampled_from(MODEL_IDS), max_size=2))),
        )
        for d in world.devices
    ]
    exclusions = [
        Exclusion(draw(st.sampled_from(MODEL_IDS)), device_id=d.device_id)
        for d in world.devices
        if draw(st.booleans())
    ]
    return world, exclusions


@settings(max_examples=150, deadline=None)
@given(rich_worlds())
def test_vectorised_feasibility_agrees_with_the_device_filter(case) -> None:
    world, exclusions = case
    for name, view in world.views().items():
        members = [d for d in world.devices if d.device_class == name]
        matrix = feasibility_matrix(
            view, members, world.models, world.settings, exclusions=exclusions, pins=world.pins
        )
        for i, device in enumerate(members):
            ctx = device_context(device, exclusions, world.pins)
            expected = [
                device_rejection(s, ctx, world.models, world.settings) is None
                for s in view.survivors
            ]
            assert matrix[i].tolist() == expected


@settings(max_examples=150, deadline=None)
@given(rich_worlds())
def test_vectorised_plan_equals_the_scalar_chooser_on_every_device(case) -> None:
    from controller.planner.assign import choose_for_device, plan_devices

    world, exclusions = case
    views = world.views()
    fast = plan_devices(
        world.devices, views, world.models, world.settings, exclusions=exclusions, pins=world.pins
    )
    for decision in fast:
        device = next(d for d in world.devices if d.device_id == decision.device_id)
        slow = choose_for_device(
            device,
            views[device.device_class],
            world.models,
            world.settings,
            exclusions=exclusions,
            pins=world.pins,
        )
        assert (
            decision.option,
            decision.runner_up,
            decision.kept_current,
            decision.note,
            decision.device_rejected,
        ) == (slow.option, slow.runner_up, slow.kept_current, slow.note, slow.device_rejected)
