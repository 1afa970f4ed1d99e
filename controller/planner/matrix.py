"""Device-level feasibility of a whole class at once, as a boolean matrix (devices x options).

The same rules as ``filters.device_rejection``, vectorised with numpy for the
common case (free memory, free disk, cached files, architecture); devices
with a pin or a device exclusion go through ``device_rejection`` itself, so
the two can never disagree on them. A test checks the two agree everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from controller.planner.filters import (
    ClassView,
    device_context,
    device_rejection,
    memory_need_mb,
)
from controller.planner.types import Device, Exclusion, ModelSpec, Pin, PlannerSettings

MB = 1_000_000


def _column(values: Sequence[float | None], missing: float) -> np.ndarray:
    return np.array([missing if v is None else v for v in values], dtype=float)


def feasibility_matrix(
    view: ClassView,
    devices: Sequence[Device],
    models: Mapping[str, ModelSpec],
    settings: PlannerSettings,
    *,
    exclusions: Sequence[Exclusion] = (),
    pins: Mapping[str, Pin] | None = None,
) -> np.ndarray:
    """``F[d, o]``: device ``d`` can run class survivor ``o`` (all devices of ``view``'s class)."""
    options = view.survivors
    pins = pins or {}
    if not options or not devices:
        return np.zeros((len(devices), len(options)), dtype=bool)
    need = np.array([memory_need_mb(s, settings) or 0.0 for s in options])
    specs = [models[s.option.model_id] for s in options]
    size = np.array([spec.file_size_bytes / MB for spec in specs])
    usable = _column(
        [
            None if d.mem_available_mb is None else d.mem_available_mb + (d.rss_mb or 0.0)
            for d in devices
        ],
        np.inf,
    )
    free = _column([d.disk_free_mb for d in devices], np.inf)
    ok = need[None, :] <= (usable - settings.free_memory_headroom_mb)[:, None]
    disk_ok = size[None, :] <= (free - settings.disk_headroom_mb)[:, None]
    col_of_model: dict[str, list[int]] = {}
    for j, s in enumerate(options):
        col_of_model.setdefault(s.option.model_id, []).append(j)
    for i, d in enumerate(devices):
        for model_id in d.cached_models & col_of_model.keys():
            disk_ok[i, col_of_model[model_id]] = True
    ok &= disk_ok
    _apply_arch(ok, devices, specs)
    excluded_ids = {e.device_id for e in exclusions if e.device_id is not None}
    for i, d in enumerate(devices):
        if d.device_id in pins or d.device_id in excluded_ids:
            ctx = device_context(d, exclusions, pins)
            ok[i] = [device_rejection(s, ctx, models, settings) is None for s in options]
    return ok


def _apply_arch(ok: np.ndarray, devices: Sequence[Device], specs: Sequence[ModelSpec]) -> None:
    arches = {d.arch for d in devices if d.arch is not None}
    for arch in arches:
        cols = np.array([s.archs is None or arch in s.archs for s in specs])
        if cols.all():
            continue
        rows = np.array([d.arch == arch for d in devices])
        ok[np.ix_(rows, ~cols)] = False
