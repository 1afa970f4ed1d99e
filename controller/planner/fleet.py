"""Fleet constraints as a mixed-integer program over groups of interchangeable devices.

Devices of one class with the same offered options and the same current
option are interchangeable (``fleet_columns.py``), so the variables are
integer counts ``x[group, option]`` (class x model x refine within each
group), not one binary per device. Constraints: every plannable device gets one option; a
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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice

import numpy as np
from scipy.sparse import coo_array, csr_array, vstack

from controller.planner.assign import Decision, unplanned
from controller.planner.filters import ClassView
from controller.planner.fleet_columns import (
    ClassBlock,
    Columns,
    Group,
    class_blocks,
    group_columns,
    offer,
)
from controller.planner.gc_pause import gc_paused
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
    """Sparse constraint rows collected before building one matrix."""

    def __init__(self, n_columns: int) -> None:
        self.n = n_columns
        self.rows: list[np.ndarray] = []
        self.cols: list[np.ndarray] = []
        self.vals: list[np.ndarray] = []
        self.lb: list[float] = []
        self.ub: list[float] = []

    def add(self, cols: np.ndarray, vals: np.ndarray, lb: float, ub: float) -> None:
        """One row with entries ``vals`` at ``cols``."""
        self.rows.append(np.full(len(cols), len(self.lb)))
        self.cols.append(cols)
        self.vals.append(vals)
        self.lb.append(lb)
        self.ub.append(ub)

    def arrays(
        self, head: csr_array, head_bounds: np.ndarray
    ) -> tuple[csr_array, np.ndarray, np.ndarray]:
        """``head`` (equality rows) stacked over the collected rows, with the bounds."""
        if not self.lb:
            return head, head_bounds, head_bounds
        body = coo_array(
            (np.concatenate(self.vals), (np.concatenate(self.rows), np.concatenate(self.cols))),
            shape=(len(self.lb), self.n),
        )
        a = vstack([head, body], format="csr")
        return (
            csr_array(a),
            np.concatenate([head_bounds, self.lb]),
            np.concatenate([head_bounds, self.ub]),
        )


def _program(
    groups: list[Group], columns: Columns, cons: FleetConstraints, h: float
) -> tuple[np.ndarray, csr_array, np.ndarray, np.ndarray]:
    """Objective and constraint rows: one equality per group, then the coupling rows."""
    n = len(columns.group)
    gain = columns.psi * np.where(columns.is_current, 1 + h, 1.0)
    one = csr_array(coo_array((np.ones(n), (columns.group, np.arange(n))), shape=(len(groups), n)))
    rows = _Rows(n)
    for model_id, minimum in sorted(cons.min_devices_per_model.items()):
        hit = np.flatnonzero(columns.model_id == model_id)
        rows.add(hit, np.ones(len(hit)), minimum, np.inf)
    for k, (_, floor) in enumerate(sorted(cons.quality_floor.items())):
        rows.add(np.arange(n), columns.lows[:, k] - floor, 0.0, np.inf)
    if cons.max_changes is not None:
        hit = np.flatnonzero(~columns.is_current)
        rows.add(hit, np.ones(len(hit)), -np.inf, cons.max_changes)
    sizes = np.array([len(g.devices) for g in groups], dtype=float)
    a, lb, ub = rows.arrays(one, sizes)
    return gain, a, lb, ub


@gc_paused
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
    """Solve the fleet MILP; every device with a feasible option is assigned exactly one.

    When the program with the offered columns (``fleet_columns.py``) is
    infeasible, it is solved once more with every feasible option offered to
    every device, so "infeasible" is never an artefact of the restriction.
    """
    classes = {d.device_class for d in devices}
    used = {s.option for c, v in views.items() if c in classes for s in v.survivors}
    lows, per_bound = _floor_bounds(used, conformance or {}, constraints)
    blocks, unplannable = class_blocks(
        devices,
        views,
        models,
        settings,
        exclusions=[e for e in exclusions if e.device_id is not None],
        pins=pins or {},
        lows=lows,
        categories=sorted(constraints.quality_floor),
    )
    result = _solve(blocks, unplannable, settings, constraints, per_bound)
    if result.status.startswith("infeasible"):
        everything = max((len(v.survivors) for v in views.values()), default=1)
        exact = settings.model_copy(update={"milp_columns": everything, "milp_cover": 0})
        result = _solve(blocks, unplannable, exact, constraints, per_bound)
    return result


def _solve(
    blocks: list[ClassBlock],
    unplannable: list[Device],
    settings: PlannerSettings,
    cons: FleetConstraints,
    per_bound: float,
) -> FleetResult:
    offer(blocks, cons.min_devices_per_model, settings.milp_columns, settings.milp_cover)
    groups, columns = group_columns(blocks)
    if not groups:
        if any(v > 0 for v in cons.min_devices_per_model.values()):
            return FleetResult([], "infeasible: no device can run any option", 0.0, per_bound)
        return FleetResult(_unplanned(unplannable), "optimal", 0.0, per_bound)
    forced = sum(len(g.devices) for g in groups if g.current is None)
    if cons.max_changes is not None and forced > cons.max_changes:
        return FleetResult(
            [],
            f"infeasible: {forced} devices must change (their current option "
            f"is infeasible or unset), cap is {cons.max_changes}",
            0.0,
            per_bound,
        )
    gain, a, lb, ub = _program(groups, columns, cons, settings.hysteresis)
    out = solve_counts(gain, a, lb, ub, columns.group, settings)
    if out.counts is None:
        return FleetResult([], out.status, 0.0, per_bound, None, len(gain))
    decisions = _disaggregate(groups, columns.group, out.counts) + _unplanned(unplannable)
    decisions.sort(key=lambda d: d.device_id)
    objective = float(gain @ out.counts)
    return FleetResult(decisions, out.status, objective, per_bound, out.gap, len(gain))


def _unplanned(devices: list[Device]) -> list[Decision]:
    return [unplanned(d) for d in devices]


def _disaggregate(
    groups: list[Group], column_group: np.ndarray, counts: np.ndarray
) -> list[Decision]:
    """Hand each group's counts to its devices in id order, best option first."""
    starts = np.searchsorted(column_group, np.arange(len(groups) + 1))
    out: list[Decision] = []
    for g, group in enumerate(groups):
        devices = iter(group.devices)
        for chosen, count in zip(group.options, counts[starts[g] : starts[g + 1]], strict=True):
            runner, kept, note = _why(group, chosen)
            out.extend(
                Decision(d.device_id, d.device_class, chosen, runner, kept, note, (), group.view)
                for d in islice(devices, int(count))
            )
    return out


def _why(group: Group, chosen: OptionScore) -> tuple[OptionScore | None, bool, str]:
    """Runner-up, whether the device keeps its option, and the note, for one choice in a group."""
    top = group.options[0]
    others = [s for s in group.options[:2] if s.option != chosen.option]
    kept = chosen.option == group.current
    note = "best Psi" if chosen.option == top.option else "fleet constraint"
    if kept and chosen.option != top.option:
        note = "kept current (hysteresis or change cap)"
    return (others[0] if others else None), kept, note
