"""Read everything the planning core needs from the database, once, before the pipeline runs."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlmodel import Session, col, select

from controller import models as db
from controller.ingest.bench_record import bench_run
from controller.planner.scores import OptionScore, compute_scores
from controller.planner.specs import model_spec_from_gguf
from controller.planner.types import (
    BenchRun,
    Device,
    Exclusion,
    ModelSpec,
    Pin,
    PlannerSettings,
    stored_option,
)
from shared.gguf_info import GgufError, read_gguf_info
from shared.profiles import DeviceProfile

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlannerInputs:
    """A consistent snapshot of classes, models, runs, devices and operator constraints."""

    profiles: dict[str, DeviceProfile]
    models: dict[str, ModelSpec]
    runs: list[BenchRun]
    devices: list[Device]
    pins: dict[str, Pin]
    exclusions: list[Exclusion]
    sha256: dict[str, str]
    size_bytes: dict[str, int]

    def scores(self, settings: PlannerSettings) -> dict[str, list[OptionScore]]:
        """Every class's scored options, best first, from this snapshot."""
        return compute_scores(self.profiles, self.models, self.runs, settings)


def _profiles(session: Session) -> dict[str, DeviceProfile]:
    out = {}
    for row in session.exec(select(db.DeviceClass)).all():
        try:
            out[row.name] = DeviceProfile.model_validate(row.profile)
        except ValidationError as exc:
            logger.warning("device class %s has an unusable profile: %s", row.name, exc)
    return out


def _model_spec(row: db.Model, profiles: dict[str, DeviceProfile]) -> ModelSpec:
    """From the GGUF header when the file is readable, else from the stored estimate."""
    try:
        info = read_gguf_info(row.path)
        return model_spec_from_gguf(row.id, info, profiles.values(), extrinsic=row.extrinsic_merit)
    except (GgufError, OSError) as exc:
        logger.info("model %s: no readable GGUF (%s); using stored metadata", row.id, exc)
    estimate = row.memory_estimate_mb
    return ModelSpec(
        model_id=row.id,
        parameters=row.parameters or 0,
        weights_bytes=row.size_bytes,
        file_size_bytes=row.size_bytes,
        memory_estimate_mb=dict.fromkeys(profiles, estimate) if estimate else {},
        extrinsic=row.extrinsic_merit,
    )


def _runs(session: Session) -> list[BenchRun]:
    questions: dict[int, list[db.BenchmarkQuestion]] = defaultdict(list)
    for q in session.exec(
        select(db.BenchmarkQuestion).order_by(col(db.BenchmarkQuestion.id))
    ).all():
        questions[q.run_pk].append(q)
    runs = session.exec(select(db.BenchmarkRun).order_by(col(db.BenchmarkRun.id))).all()
    return [bench_run(run, questions.get(run.id or -1, ())) for run in runs]


def _num(data: dict[str, Any] | None, key: str) -> float | None:
    value = (data or {}).get(key)
    return float(value) if isinstance(value, int | float) else None


def _device(row: db.Device) -> Device | None:
    if row.device_class is None:
        return None
    beat = row.last_heartbeat
    cached = frozenset(
        str(m["model_id"])
        for m in row.cached_models or []
        if isinstance(m, dict) and "model_id" in m
    )
    return Device(
        device_id=row.id,
        device_class=row.device_class,
        arch=row.arch,
        mem_available_mb=_num(beat, "mem_available_mb"),
        rss_mb=_num(beat, "rss_mb"),
        disk_free_mb=_num(beat, "disk_free_mb") or row.disk_free_mb,
        cached_models=cached,
        current=stored_option(row.model_id, row.strategy, row.refine) if row.model_id else None,
        online=row.status == "online",
        engine_problem=_engine_problem(row.engine),
    )


def _engine_problem(engine: dict[str, Any] | None) -> str | None:
    """The reason from a failed engine check in the device's hello (None: ok or not reported)."""
    if not engine or engine.get("ok", True):
        return None
    return str(engine.get("reason") or engine.get("crash") or "the engine check failed")


def _pinned_strategy(pin: db.Pin) -> str | None:
    """The strategy a pin names; None (any) when it names neither a strategy nor a flag."""
    if pin.strategy is None and pin.refine is None:
        return None
    return stored_option(pin.model_id, pin.strategy, pin.refine).strategy


def load_inputs(session: Session) -> PlannerInputs:
    """One read of the database; the pure core runs on what this returns."""
    profiles = _profiles(session)
    model_rows = session.exec(select(db.Model).order_by(db.Model.id)).all()
    devices = [d for d in map(_device, session.exec(select(db.Device)).all()) if d is not None]
    pins: dict[str, Pin] = {}
    exclusions: list[Exclusion] = []
    for p in session.exec(select(db.Pin).order_by(col(db.Pin.id))).all():
        if p.kind == db.PinKind.PIN.value and p.device_id:
            pins[p.device_id] = Pin(p.device_id, p.model_id, _pinned_strategy(p))
        elif p.kind == db.PinKind.EXCLUDE.value:
            exclusions.append(Exclusion(p.model_id, p.device_id, p.device_class))
    return PlannerInputs(
        profiles=profiles,
        models={m.id: _model_spec(m, profiles) for m in model_rows},
        runs=_runs(session),
        devices=sorted(devices, key=lambda d: d.device_id),
        pins=pins,
        exclusions=exclusions,
        sha256={m.id: m.sha256 for m in model_rows},
        size_bytes={m.id: m.size_bytes for m in model_rows},
    )


def current_scores(session: Session, settings: PlannerSettings) -> dict[str, list[OptionScore]]:
    """The leaderboard as the database stands now: classes, models and runs, then the scoring.

    Not the devices: scores do not depend on them, and reading 10,000 made /scores take 3 s.
    """
    profiles = _profiles(session)
    models = session.exec(select(db.Model).order_by(db.Model.id)).all()
    specs = {m.id: _model_spec(m, profiles) for m in models}
    return compute_scores(profiles, specs, _runs(session), settings)
