"""The fleet program's columns: the options offered to each device, and groups of devices.

A device is offered every feasible option when it has at most
``milp_columns`` of them; then the program is exact (the property tests check
it against brute force). Beyond that it is offered the ``milp_columns`` best
by Psi, its current option, per floor category the option with the highest
lower bound, and, for each model with a minimum count, that model's best
option on the devices where moving to it costs the least Psi, until
``milp_cover`` times the minimum is offered (every device that can run it
when ``milp_cover`` is 0).
Columns left out are lower-Psi options no constraint singles out: a
restriction that keeps 100,000 devices solvable in seconds.

Devices of one class with the same offered columns and the same current
option are interchangeable: one group, one integer count per column. The
grouping and the column table are built with numpy, never per device.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from controller.planner.filters import ClassView
from controller.planner.matrix import feasibility_matrix
from controller.planner.scores import OptionScore
from controller.planner.types import Device, Exclusion, ModelSpec, Option, Pin, PlannerSettings


@dataclass
class ClassBlock:
    """One class's plannable devices and, per device, its feasible and offered survivors."""

    view: ClassView
    members: list[Device]
    feasible: np.ndarray
    current: np.ndarray
    """Survivor index of each member's current option when it is feasible, else -1."""
    lows: np.ndarray
    """Each survivor's accuracy lower bound per floor category (survivors x categories)."""
    offered: np.ndarray

    @cached_property
    def psi(self) -> np.ndarray:
        """Each survivor's Psi (survivors are in descending Psi order)."""
        return np.array([s.psi for s in self.view.survivors])

    @cached_property
    def model_ids(self) -> np.ndarray:
        """Each survivor's model id."""
        return np.array([s.option.model_id for s in self.view.survivors], dtype=object)


@dataclass(frozen=True)
class Group:
    """Interchangeable devices: one class, one current option, the same offered columns."""

    view: ClassView
    current: Option | None
    options: tuple[OptionScore, ...]
    devices: list[Device]


@dataclass(frozen=True)
class Columns:
    """One entry per (group, offered option), grouped and in Psi order within a group."""

    group: np.ndarray
    psi: np.ndarray
    model_id: np.ndarray
    lows: np.ndarray
    """Lower bound of each column's accuracy per floor category (columns x categories)."""
    is_current: np.ndarray


def class_blocks(
    devices: Sequence[Device],
    views: Mapping[str, ClassView],
    models: Mapping[str, ModelSpec],
    settings: PlannerSettings,
    *,
    exclusions: Sequence[Exclusion],
    pins: Mapping[str, Pin],
    lows: Mapping[tuple[Option, str], float],
    categories: Sequence[str],
) -> tuple[list[ClassBlock], list[Device]]:
    """Feasibility per class (devices in id order); apart: unplannable devices.

    Unplannable: an unknown class, an engine that cannot run models, or no feasible option.
    """
    by_class: dict[str, list[Device]] = {}
    unplannable = []
    for device in sorted(devices, key=lambda d: d.device_id):
        if device.device_class in views and device.engine_problem is None:
            by_class.setdefault(device.device_class, []).append(device)
        else:
            unplannable.append(device)
    blocks = []
    for name in sorted(by_class):
        view, members = views[name], by_class[name]
        feasible = feasibility_matrix(
            view, members, models, settings, exclusions=exclusions, pins=pins
        )
        ok = [bool(v) for v in np.count_nonzero(feasible, axis=1) > 0]
        unplannable.extend(d for d, keep in zip(members, ok, strict=True) if not keep)
        members = [d for d, keep in zip(members, ok, strict=True) if keep]
        if not members:
            continue
        feasible = feasible[np.asarray(ok)]
        table = np.array(
            [[lows[(s.option, k)] for k in categories] for s in view.survivors], dtype=float
        ).reshape(len(view.survivors), len(categories))
        current = _current(view, members, feasible)
        blocks.append(ClassBlock(view, members, feasible, current, table, feasible))
    return blocks, unplannable


def _current(view: ClassView, members: list[Device], feasible: np.ndarray) -> np.ndarray:
    index = {s.option: j for j, s in enumerate(view.survivors)}
    cur = np.array([index.get(d.current, -1) if d.current else -1 for d in members], dtype=int)
    rows = np.arange(len(members))
    # An infeasible current option is no column: any choice is a change.
    return np.where((cur >= 0) & feasible[rows, cur.clip(0)], cur, -1)


def offer(
    blocks: list[ClassBlock],
    min_devices: Mapping[str, int],
    limit: int,
    cover: int,
) -> None:
    """Fill each block's ``offered`` matrix (see the module docstring for the rule)."""
    for block in blocks:
        f = block.feasible
        block.offered = f & (np.cumsum(f, axis=1) <= limit)
        for k in range(block.lows.shape[1]):
            order = np.argsort(-block.lows[:, k], kind="stable")
            block.offered[np.arange(len(f)), order[f[:, order].argmax(axis=1)]] = True
        has = block.current >= 0
        block.offered[np.flatnonzero(has), block.current[has]] = True
    for model_id, minimum in sorted(min_devices.items()):
        if minimum > 0:
            _cover_model(blocks, model_id, cover * minimum if cover else None)


def _cover_model(blocks: list[ClassBlock], model_id: str, target: int | None) -> None:
    """Offer ``model_id``'s best option where it costs the least Psi, up to ``target`` devices."""
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    already = 0
    for b, block in enumerate(blocks):
        cols = np.flatnonzero(block.model_ids == model_id)
        if not len(cols):
            continue
        sub = block.feasible[:, cols]
        ok = sub.any(axis=1)
        shown = block.offered[:, cols].any(axis=1)
        already += int((ok & shown).sum())
        rows = np.flatnonzero(ok & ~shown)
        psi = block.psi
        pick = cols[sub[rows].argmax(axis=1)]
        loss = psi[block.feasible[rows].argmax(axis=1)] - psi[pick]
        found.append((loss, np.full(len(rows), b), rows, pick))
    if not found:
        return
    loss, block_of, rows, pick = (np.concatenate(parts) for parts in zip(*found, strict=True))
    # Ties go to the first class by name, then the lowest device id (members are in id order).
    take = np.lexsort((rows, block_of, loss))
    if target is not None:
        take = take[: max(0, target - already)]
    for b in np.unique(block_of[take]):
        sel = take[block_of[take] == b]
        blocks[int(b)].offered[rows[sel], pick[sel]] = True


def group_columns(blocks: list[ClassBlock]) -> tuple[list[Group], Columns]:
    """Groups of interchangeable devices and the column table, in a deterministic order."""
    groups: list[Group] = []
    parts: list[tuple[np.ndarray, ...]] = []
    for block in blocks:
        survivors = block.view.survivors
        packed = np.packbits(block.offered, axis=1)
        key = np.concatenate([packed, block.current.astype("<i4")[:, None].view(np.uint8)], axis=1)
        unique, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
        offered = block.offered[first]
        current = block.current[first]
        members = np.argsort(inverse, kind="stable")
        bounds = np.searchsorted(inverse[members], np.arange(len(unique) + 1))
        g, j = np.nonzero(offered)
        parts.append(
            (
                g + len(groups),
                block.psi[j],
                block.model_ids[j],
                block.lows[j],
                j == current[g],
            )
        )
        for u in range(len(unique)):
            idx = members[bounds[u] : bounds[u + 1]]
            groups.append(
                Group(
                    block.view,
                    survivors[current[u]].option if current[u] >= 0 else None,
                    tuple(survivors[k] for k in np.flatnonzero(offered[u])),
                    [block.members[i] for i in idx],
                )
            )
    return groups, _stack(parts)


def _stack(parts: list[tuple[np.ndarray, ...]]) -> Columns:
    if not parts:
        empty = np.zeros(0)
        return Columns(empty.astype(int), empty, empty.astype(object), np.zeros((0, 0)), empty > 0)
    group, psi, model_id, lows, is_current = (np.concatenate(p) for p in zip(*parts, strict=True))
    return Columns(group, psi, model_id, lows, is_current)
