"""Fleet constraints as a mixed-integer program over groups of interchangeable devices.

Devices of one class with the same feasible options and the same current
option are interchangeable, so the variables are integer counts
``x[group, option]`` (class x model x refine within each group), not one
binary per device. Constraints: every plannable device gets one option; a
minimum number of devices per model; a per-category quality floor that holds
with the chosen confidence (device-share weighted mean of Clopper-Pearson
lower bounds >= floor, the bounds' confidences multiplying to the target, as
SMART's mixes do); a cap on devices changing option. The objective is total
Psi with the hysteresis bonus for keeping the current option. Solved with
``scipy.optimize.milp`` (HiGHS), which is deterministic for a given input.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_array

from controller.planner.assign import ClassView, Decision
from controller.planner.filters import (
    DeviceContext,
    device_context,
    device_rejection,
    memory_need_mb,
)
from controller.planner.profiling import clopper_pearson
from controller.planner.scores import OptionScore
from controller.planner.types import Device, Exclusion, ModelSpec, Option, Pin, PlannerSettings

MB = 1_000_000


@dataclass(frozen=True)
class FleetConstraints:
    """Optional fleet-wide requirements; empty means the per-device choice is optimal."""

    min_devices_per_model: Mapping[str, int] = field(default_factory=dict)
    quality_floor: Mapping[str, float] = field(default_factory=dict)
    """Per category: minimum device-share-weighted conformance accuracy."""
    floor_confidence: float = 0.95
    max_changes: int | None = None

    @property
    def empty(self) -> bool:
        """True when no constraint couples devices."""
        return not (self.min_devices_per_model or self.quality_floor) and self.max_changes is None


@dataclass
class _Group:
    view: ClassView
    current: Option | None
    options: tuple[OptionScore, ...]
    devices: list[Device]


@dataclass(frozen=True)
class FleetResult:
    """The MILP's outcome: decisions (empty when infeasible), status text, objective."""

    decisions: list[Decision]
    status: str
    objective: float
    per_bound_confidence: float | None = None


class _Signatures:
    """Device-level feasibility depends on a few facts; devices sharing them share the answer.

    Memory and disk only matter through how many of the class's needs they
    cover, so free memory and free disk enter the key as cut points.
    """

    def __init__(self, models: Mapping[str, ModelSpec], settings: PlannerSettings) -> None:
        self.models = models
        self.settings = settings
        self._cuts: dict[str, tuple[list[float], list[float], frozenset[str]]] = {}

    def _class_cuts(self, view: ClassView) -> tuple[list[float], list[float], frozenset[str]]:
        name = view.profile.name
        if name not in self._cuts:
            needs = sorted(memory_need_mb(s, self.settings) or 0.0 for s in view.survivors)
            ids = frozenset(s.option.model_id for s in view.survivors)
            sizes = sorted(self.models[m].file_size_bytes / MB for m in ids)
            self._cuts[name] = (needs, sizes, ids)
        return self._cuts[name]

    def key(self, device: Device, view: ClassView, ctx: DeviceContext) -> tuple[object, ...]:
        needs, sizes, ids = self._class_cuts(view)
        usable = ctx.usable_memory_mb
        mem = (
            -1
            if usable is None
            else bisect_right(needs, usable - self.settings.free_memory_headroom_mb)
        )
        free = device.disk_free_mb
        disk = -1 if free is None else bisect_right(sizes, free - self.settings.disk_headroom_mb)
        cached = device.cached_models & ids if free is not None else frozenset()
        return (
            device.device_class,
            device.current,
            ctx.pin,
            ctx.excluded,
            device.arch,
            mem,
            disk,
            cached,
        )


def _groups(
    devices: Sequence[Device],
    views: Mapping[str, ClassView],
    models: Mapping[str, ModelSpec],
    settings: PlannerSettings,
    exclusions: Sequence[Exclusion],
    pins: Mapping[str, Pin],
) -> tuple[list[_Group], list[Device]]:
    groups: dict[tuple[object, ...], _Group] = {}
    empty: dict[tuple[object, ...], bool] = {}
    signatures = _Signatures(models, settings)
    unplannable = []
    for device in sorted(devices, key=lambda d: d.device_id):
        view = views.get(device.device_class)
        if view is None:
            unplannable.append(device)
            continue
        ctx = device_context(device, exclusions, pins)
        key = signatures.key(device, view, ctx)
        if key not in groups and key not in empty:
            feasible = tuple(
                s for s in view.survivors if device_rejection(s, ctx, models, settings) is None
            )
            if feasible:
                groups[key] = _Group(view, device.current, feasible, [])
            else:
                empty[key] = True
        if key in empty:
            unplannable.append(device)
        else:
            groups[key].devices.append(device)
    return list(groups.values()), unplannable


def _floor_bounds(
    options: set[Option],
    conformance: Mapping[Option, Mapping[str, tuple[int, int]]],
    cons: FleetConstraints,
) -> tuple[dict[tuple[Option, str], float], float]:
    """Lower bounds per (option, category) at a confidence that multiplies up to the target."""
    n_bounds = max(1, len(options) * len(cons.quality_floor))
    per_bound = cons.floor_confidence ** (1 / n_bounds)
    lows = {}
    for option in options:
        for category in cons.quality_floor:
            k, n = conformance.get(option, {}).get(category, (0, 0))
            lows[(option, category)] = clopper_pearson(k, n, per_bound, one_sided=True)[0]
    return lows, per_bound


class _Rows:
    """Sparse constraint rows collected before building one LinearConstraint."""

    def __init__(self) -> None:
        self.rows: list[int] = []
        self.cols: list[int] = []
        self.vals: list[float] = []
        self.lb: list[float] = []
        self.ub: list[float] = []

    def add(self, entries: list[tuple[int, float]], lb: float, ub: float) -> None:
        r = len(self.lb)
        for col, val in entries:
            self.rows.append(r)
            self.cols.append(col)
            self.vals.append(val)
        self.lb.append(lb)
        self.ub.append(ub)

    def constraint(self, n_vars: int) -> LinearConstraint:
        a = coo_array((self.vals, (self.rows, self.cols)), shape=(len(self.lb), n_vars))
        return LinearConstraint(a.tocsr(), np.array(self.lb), np.array(self.ub))


def _variables(groups: list[_Group], h: float) -> tuple[list[tuple[int, OptionScore]], np.ndarray]:
    variables = [(g, s) for g, group in enumerate(groups) for s in group.options]
    gain = np.array([s.psi * (1 + h if s.option == groups[g].current else 1) for g, s in variables])
    return variables, gain


def _rows(
    groups: list[_Group],
    variables: list[tuple[int, OptionScore]],
    cons: FleetConstraints,
    lows: dict[tuple[Option, str], float],
) -> _Rows:
    rows = _Rows()
    by_group: dict[int, list[tuple[int, float]]] = defaultdict(list)
    by_model: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for j, (g, s) in enumerate(variables):
        by_group[g].append((j, 1.0))
        by_model[s.option.model_id].append((j, 1.0))
    for g, group in enumerate(groups):
        rows.add(by_group[g], len(group.devices), len(group.devices))
    for model_id, minimum in sorted(cons.min_devices_per_model.items()):
        rows.add(by_model.get(model_id, []), minimum, np.inf)
    for category, floor in sorted(cons.quality_floor.items()):
        entries = [(j, lows[(s.option, category)] - floor) for j, (_, s) in enumerate(variables)]
        rows.add(entries, 0.0, np.inf)
    if cons.max_changes is not None:
        changes = [(j, 1.0) for j, (g, s) in enumerate(variables) if s.option != groups[g].current]
        rows.add(changes, -np.inf, cons.max_changes)
    return rows


def plan_fleet(
    devices: Sequence[Device],
    views: Mapping[str, ClassView],
    models: Mapping[str, ModelSpec],
    settings: PlannerSettings,
    constraints: FleetConstraints,
    *,
    conformance: Mapping[Option, Mapping[str, tuple[int, int]]] | None = None,
    exclusions: Sequence[Exclusion] = (),
    pins: Mapping[str, Pin] | None = None,
) -> FleetResult:
    """Solve the fleet MILP; every device with a feasible option is assigned exactly one."""
    device_excl = [e for e in exclusions if e.device_id is not None]
    groups, unplannable = _groups(devices, views, models, settings, device_excl, pins or {})
    variables, gain = _variables(groups, settings.hysteresis)
    used = {s.option for _, s in variables}
    lows, per_bound = _floor_bounds(used, conformance or {}, constraints)
    if not variables:
        if any(v > 0 for v in constraints.min_devices_per_model.values()):
            return FleetResult([], "infeasible: no device can run any option", 0.0, per_bound)
        return FleetResult(_unplanned(unplannable), "optimal", 0.0, per_bound)
    rows = _rows(groups, variables, constraints, lows)
    res = milp(
        -gain,
        constraints=rows.constraint(len(variables)),
        integrality=np.ones(len(variables)),
        bounds=Bounds(0, np.inf),
        options={"mip_rel_gap": 1e-9},
    )
    if res.x is None:
        return FleetResult([], f"infeasible: {res.message}", 0.0, per_bound)
    counts = np.rint(res.x).astype(int)
    decisions = _disaggregate(groups, variables, counts) + _unplanned(unplannable)
    decisions.sort(key=lambda d: d.device_id)
    return FleetResult(decisions, "optimal", float(gain @ counts), per_bound)


def _unplanned(devices: list[Device]) -> list[Decision]:
    return [
        Decision(d.device_id, d.device_class, None, None, False, "no feasible option")
        for d in devices
    ]


def _disaggregate(
    groups: list[_Group], variables: list[tuple[int, OptionScore]], counts: np.ndarray
) -> list[Decision]:
    """Hand each group's counts to its devices in id order, best option first."""
    per_group: dict[int, list[OptionScore]] = defaultdict(list)
    for (g, s), count in zip(variables, counts, strict=True):
        per_group[g].extend([s] * int(count))
    out = []
    for g, group in enumerate(groups):
        top = group.options[0]
        for device, chosen in zip(group.devices, per_group[g], strict=True):
            runner = next((s for s in group.options if s.option != chosen.option), None)
            note = "best Psi" if chosen.option == top.option else "fleet constraint"
            if chosen.option == group.current and chosen.option != top.option:
                note = "kept current (hysteresis or change cap)"
            out.append(
                Decision(
                    device.device_id,
                    device.device_class,
                    chosen,
                    runner,
                    chosen.option == group.current,
                    note,
                    (),
                    group.view,
                )
            )
    return out
