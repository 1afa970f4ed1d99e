"""Hypothesis strategies for small random fleets, and an independent brute-force planner."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from hypothesis import strategies as st

from controller.planner.assign import Decision
from controller.planner.filters import ClassView, build_views
from controller.planner.fleet import FleetConstraints, FleetResult, plan_fleet
from controller.planner.profiling import clopper_pearson
from controller.planner.scores import OptionScore, rank_key
from controller.planner.types import Device, ModelSpec, Option, Pin, PlannerSettings
from shared.profiles import DeviceProfile
from tests.factories.planner import model_spec, option_score

MODEL_IDS = ("m-a", "m-b", "m-c")
STRATEGIES = ("direct", "refine:1", "vote:5")
CATEGORIES = ("math", "writing")


@dataclass
class World:
    profiles: dict[str, DeviceProfile]
    models: dict[str, ModelSpec]
    scores: dict[str, list[OptionScore]]
    devices: list[Device]
    pins: dict[str, Pin]
    settings: PlannerSettings
    conformance: dict[Option, dict[str, tuple[int, int]]]

    def views(self) -> dict[str, ClassView]:
        return build_views(self.scores, self.profiles, self.models, self.settings)

    def plan_fleet(self, cons: FleetConstraints) -> FleetResult:
        """The fleet MILP on this world, with its pins and conformance."""
        return plan_fleet(
            self.devices,
            self.views(),
            self.models,
            self.settings,
            cons,
            conformance=self.conformance,
            pins=self.pins,
        )


def _profile(name: str, memory: int, latency: float) -> DeviceProfile:
    return DeviceProfile(
        name=name,
        arch="aarch64",
        memory_budget_mb=memory,
        latency_budget_s=latency,
        disk_budget_mb=100_000,
        threads=1,
        memory_bandwidth_gbs=4,
        compute_gflops=10,
    )


@st.composite
def worlds(draw: st.DrawFn, max_devices: int = 4) -> World:
    classes = draw(st.lists(st.sampled_from(["c1", "c2"]), min_size=1, max_size=2, unique=True))
    profiles = {
        c: _profile(c, draw(st.integers(500, 3000)), draw(st.sampled_from([30.0, 60.0])))
        for c in classes
    }
    models = {m: model_spec(m, 0.5) for m in MODEL_IDS}
    scores: dict[str, list[OptionScore]] = {}
    conformance: dict[Option, dict[str, tuple[int, int]]] = {}
    for c in classes:
        opts = []
        for m, strategy in itertools.product(MODEL_IDS, STRATEGIES):
            if draw(st.booleans()):
                opts.append(
                    option_score(
                        c,
                        m,
                        strategy,
                        psi=draw(st.sampled_from([1.0, 1.5, 2.0, 2.02, 2.5, 3.0])),
                        memory_mb=draw(st.integers(100, 3000)),
                        p95_s=draw(st.sampled_from([5.0, 20.0, 45.0, 70.0])),
                    )
                )
        scores[c] = sorted(opts, key=rank_key)
    for m, strategy in itertools.product(MODEL_IDS, STRATEGIES):
        n = draw(st.integers(5, 60))
        conformance[Option(m, strategy)] = {k: (draw(st.integers(0, n)), n) for k in CATEGORIES}
    n_devices = draw(st.integers(1, max_devices))
    devices = []
    for i in range(n_devices):
        current = draw(
            st.one_of(st.none(), st.tuples(st.sampled_from(MODEL_IDS), st.sampled_from(STRATEGIES)))
        )
        devices.append(
            Device(
                device_id=f"d{i}",
                device_class=draw(st.sampled_from(classes)),
                mem_available_mb=draw(st.one_of(st.none(), st.integers(200, 3500).map(float))),
                rss_mb=draw(st.sampled_from([None, 0.0, 300.0])),
                current=Option(*current) if current else None,
            )
        )
    pins = {}
    for d in devices:
        if draw(st.integers(0, 4)) == 0:
            pins[d.device_id] = Pin(d.device_id, draw(st.sampled_from(MODEL_IDS)))
    settings = PlannerSettings(
        hysteresis=draw(st.sampled_from([0.0, 0.02, 0.3])), milp_rel_gap=1e-9, milp_columns=12
    )
    return World(profiles, models, scores, devices, pins, settings, conformance)


@st.composite
def constraints(draw: st.DrawFn) -> FleetConstraints:
    mins = {m: draw(st.integers(0, 2)) for m in MODEL_IDS if draw(st.booleans())}
    floor = {k: draw(st.sampled_from([0.05, 0.2, 0.4])) for k in CATEGORIES if draw(st.booleans())}
    return FleetConstraints(
        min_devices_per_model=mins,
        quality_floor=floor,
        floor_confidence=0.9,
        max_changes=draw(st.one_of(st.none(), st.integers(0, 3))),
    )


# --- the brute force, written from the spec, not from the planner's code ---


def feasible_options(world: World, device: Device) -> list[OptionScore]:
    profile = world.profiles[device.device_class]
    s = world.settings
    out = []
    for score in world.scores[device.device_class]:
        need = score.memory_mb * (1 + s.memory_margin_frac)
        if need > profile.memory_budget_mb or score.latency.p95_s > profile.latency_budget_s:
            continue
        if device.mem_available_mb is not None and (
            need > device.mem_available_mb + (device.rss_mb or 0) - s.free_memory_headroom_mb
        ):
            continue
        pin = world.pins.get(device.device_id)
        if pin is not None and pin.model_id != score.option.model_id:
            continue
        out.append(score)
    return out


def value(world: World, device: Device, score: OptionScore) -> float:
    keep = score.option == device.current
    return score.psi * (1 + world.settings.hysteresis if keep else 1)


def floor_lows(world: World, cons: FleetConstraints) -> dict[tuple[Option, str], float]:
    """Lower bounds per (option, floor category), at the per-bound confidence the spec gives."""
    classes = {d.device_class for d in world.devices}
    used = {
        s.option
        for c in classes
        for s in world.scores[c]
        if s.memory_mb * 1.1 <= world.profiles[c].memory_budget_mb
        and s.latency.p95_s <= world.profiles[c].latency_budget_s
    }
    per_bound = cons.floor_confidence ** (1 / max(1, len(used) * len(cons.quality_floor)))
    return {
        (o, k): clopper_pearson(
            *world.conformance.get(o, {}).get(k, (0, 0)), per_bound, one_sided=True
        )[0]
        for o in used
        for k in cons.quality_floor
    }


def brute_force(world: World, cons: FleetConstraints) -> float | None:
    """Best total value over every assignment that satisfies the constraints; None: infeasible."""
    plannable = [d for d in world.devices if feasible_options(world, d)]
    choices = [feasible_options(world, d) for d in plannable]
    lows = floor_lows(world, cons)
    best = None
    for combo in itertools.product(*choices):
        if not _ok(combo, plannable, cons, lows):
            continue
        total = sum(value(world, d, s) for d, s in zip(plannable, combo, strict=True))
        best = total if best is None else max(best, total)
    return best


def satisfies(world: World, cons: FleetConstraints, decisions: list[Decision]) -> bool:
    """Whether a plan gives every device a feasible option and meets every fleet constraint."""
    by_id = {d.device_id: d for d in world.devices}
    planned = [(by_id[x.device_id], x.chosen) for x in decisions if x.chosen is not None]
    if any(s.option not in {f.option for f in feasible_options(world, d)} for d, s in planned):
        return False
    devices = [d for d, _ in planned]
    return _ok([s for _, s in planned], devices, cons, floor_lows(world, cons))


def _ok(combo, devices, cons, lows) -> bool:
    for model_id, minimum in cons.min_devices_per_model.items():
        if sum(s.option.model_id == model_id for s in combo) < minimum:
            return False
    for k, floor in cons.quality_floor.items():
        if sum(lows[(s.option, k)] - floor for s in combo) < -1e-9:
            return False
    if cons.max_changes is not None:
        changes = sum(s.option != d.current for d, s in zip(devices, combo, strict=True))
        if changes > cons.max_changes:
            return False
    return True
