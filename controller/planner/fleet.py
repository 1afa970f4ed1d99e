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
``scipy.optimize.milp`` (HiGHS, deterministic for a given input): the LP
relaxation first, then a MILP only over the groups it left fractional
(``solve.py``), so large fleets stay fast and the gap is certified.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import coo_array, csr_array

from controller.planner.assign import ClassView, Decision
from controller.planner.matrix import feasibility_matrix
from controller.planner.profiling import clopper_pearson
from controller.planner.scores import OptionScore
from controller.planner.solve import solve_counts
from controller.planner.types import Device, Exclusion, ModelSpec, Option, Pin, PlannerSettings


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
    gap: float | None = None
    """Relative distance to HiGHS's dual bound: 0 means proven optimal for these columns."""
    variables: int = 0


def _candidates(
    feasible: np.ndarray,
    view: ClassView,
    cons: FleetConstraints,
    lows: Mapping[tuple[Option, str], float],
    limit: int,
) -> np.ndarray:
    """Columns worth offering the MILP: the ``limit`` best by Psi, and all a constraint needs.

    Those are: per floor category the feasible option with the highest lower
    bound, and the best feasible option of each model with a minimum count.
    When every device has at most ``limit`` feasible options this is all of
    them and the MILP is exact (the property tests check it against brute
    force); beyond that the columns left out are lower-Psi options that no
    constraint singles out, a restriction that keeps 100,000 devices solvable.
    """
    cols = feasible & (np.cumsum(feasible, axis=1) <= limit)
    has = feasible.any(axis=1)
    if not view.survivors:
        return cols
    for category in sorted(cons.quality_floor):
        order = np.argsort([-lows[(s.option, category)] for s in view.survivors], kind="stable")
        first = feasible[:, order].argmax(axis=1)
        cols[np.flatnonzero(has), order[first[has]]] = True
    for model_id in cons.min_devices_per_model:
        model_cols = [j for j, s in enumerate(view.survivors) if s.option.model_id == model_id]
        if model_cols:  # the model's best feasible option (survivors are sorted by Psi)
            sub = feasible[:, model_cols]
            any_ok = sub.any(axis=1)
            pick = np.asarray(model_cols)[sub.argmax(axis=1)]
            cols[np.flatnonzero(any_ok), pick[any_ok]] = True
    return cols


def _groups(
    devices: Sequence[Device],
    views: Mapping[str, ClassView],
    ctx: _Context,
) -> tuple[list[_Group], list[Device]]:
    by_class: dict[str, list[Device]] = defaultdict(list)
    unplannable = []
    for device in sorted(devices, key=lambda d: d.device_id):
        if device.device_class in views:
            by_class[device.device_class].append(device)
        else:
            unplannable.append(device)
    groups: dict[tuple[object, ...], _Group] = {}
    for name in sorted(by_class):
        view, members = views[name], by_class[name]
        feasible = feasibility_matrix(
            view, members, ctx.models, ctx.settings, exclusions=ctx.exclusions, pins=ctx.pins
        )
        cols = _candidates(feasible, view, ctx.cons, ctx.lows, ctx.settings.milp_columns)
        index = {s.option: j for j, s in enumerate(view.survivors)}
        for i, device in enumerate(members):
            if not feasible[i].any():
                unplannable.append(device)
                continue
            row = cols[i].copy()
            j = index.get(device.current, -1) if device.current else -1
            # An infeasible current option is no column: any choice is a change.
            current = device.current if j >= 0 and feasible[i, j] else None
            if current is not None:
                row[j] = True
            key = (name, current, row.tobytes())
            if key not in groups:
                options = tuple(view.survivors[k] for k in np.flatnonzero(row))
                groups[key] = _Group(view, current, options, [])
            groups[key].devices.append(device)
    return list(groups.values()), unplannable


@dataclass(frozen=True)
class _Context:
    models: Mapping[str, ModelSpec]
    settings: PlannerSettings
    cons: FleetConstraints
    lows: Mapping[tuple[Option, str], float]
    exclusions: Sequence[Exclusion]
    pins: Mapping[str, Pin]


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

    def arrays(self, n_vars: int) -> tuple[csr_array, np.ndarray, np.ndarray]:
        """The rows as a sparse matrix with lower and upper bounds."""
        a = coo_array((self.vals, (self.rows, self.cols)), shape=(len(self.lb), n_vars))
        return csr_array(a), np.array(self.lb), np.array(self.ub)


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
    classes = {d.device_class for d in devices}
    used = {s.option for c, v in views.items() if c in classes for s in v.survivors}
    lows, per_bound = _floor_bounds(used, conformance or {}, constraints)
    ctx = _Context(models, settings, constraints, lows, device_excl, pins or {})
    groups, unplannable = _groups(devices, views, ctx)
    variables, gain = _variables(groups, settings.hysteresis)
    if not variables:
        if any(v > 0 for v in constraints.min_devices_per_model.values()):
            return FleetResult([], "infeasible: no device can run any option", 0.0, per_bound)
        return FleetResult(_unplanned(unplannable), "optimal", 0.0, per_bound)
    forced = sum(len(g.devices) for g in groups if g.current is None)
    if constraints.max_changes is not None and forced > constraints.max_changes:
        return FleetResult(
            [],
            f"infeasible: {forced} devices must change (their current option "
            f"is infeasible or unset), cap is {constraints.max_changes}",
            0.0,
            per_bound,
        )
    rows = _rows(groups, variables, constraints, lows)
    a, lb, ub = rows.arrays(len(variables))
    var_group = np.array([g for g, _ in variables])
    out = solve_counts(gain, a, lb, ub, var_group, settings)
    if out.counts is None:
        return FleetResult([], out.status, 0.0, per_bound, None, len(variables))
    decisions = _disaggregate(groups, variables, out.counts) + _unplanned(unplannable)
    decisions.sort(key=lambda d: d.device_id)
    objective = float(gain @ out.counts)
    return FleetResult(decisions, out.status, objective, per_bound, out.gap, len(variables))


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
