"""Plain data the planning core reads and returns; the database is read before, written after."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from shared.messages import AnswerLatency, QuestionResult
from shared.perfics import PerficsWeights
from shared.strategies import DIRECT, REFINE_1, Strategy, StrategyName, option_label


class Option(NamedTuple):
    """What a device can be told to run: a model and the test-time strategy it serves with."""

    model_id: str
    strategy: str = DIRECT.name
    """A canonical ``shared.strategies`` name (``direct``, ``refine:1``, ``vote:5``...)."""

    @property
    def refine(self) -> bool:
        """Whether the option spends more than one answer (older agents' ``refine`` flag)."""
        return self.strategy != DIRECT.name

    def label(self) -> str:
        """Short text for reasons and tables."""
        return option_label(self.model_id, self.strategy)


def stored_option(model_id: str, strategy: object, refine: object = False) -> Option:
    """An option as stored: its strategy, or (rows and plans from before strategies) the flag."""
    if isinstance(strategy, str) and strategy:
        return Option(model_id, strategy)
    return Option(model_id, Strategy.from_refine(bool(refine or strategy)).name)


@dataclass(frozen=True)
class ModelSpec:
    """A model in the registry, as the planner needs to know it."""

    model_id: str
    parameters: int
    weights_bytes: int
    """Tensor bytes; all of them are read for each decoded token."""
    file_size_bytes: int
    memory_estimate_mb: Mapping[str, float] = field(default_factory=dict)
    """GGUF-based memory estimate per device class (its n_ctx, KV type and parallel sequences)."""
    parallel: Mapping[str, int] = field(default_factory=dict)
    """Sequences a device of each class decodes together (absent: one)."""
    kv_mb_per_sequence: Mapping[str, float] = field(default_factory=dict)
    """KV cells of one sequence per class: what each sequence beyond a measured one adds."""
    archs: frozenset[str] | None = None
    """CPU architectures the model is allowed on; None: any."""
    extrinsic: float = 0.0
    """Operator-set merit E in [0, 1]."""


@dataclass(frozen=True)
class Device:
    """One device, from its last hello, heartbeat and state."""

    device_id: str
    device_class: str
    arch: str | None = None
    mem_available_mb: float | None = None
    rss_mb: float | None = None
    """Resident memory of the serving process, freed when the model is replaced."""
    disk_free_mb: float | None = None
    cached_models: frozenset[str] = frozenset()
    current: Option | None = None
    online: bool = True
    engine_problem: str | None = None
    """Why the device's llama.cpp cannot run a model (its agent's engine check), if it cannot."""


@dataclass(frozen=True)
class BenchRun:
    """One benchmark run of one model on one device class (``controller.ingest.bench_record``)."""

    model_id: str
    device_class: str
    peak_rss_mb: float
    prefill_tok_s: float | None = None
    decode_tok_s: float | None = None
    zero_shot: AnswerLatency | None = None
    refined: AnswerLatency | None = None
    questions: tuple[QuestionResult, ...] = ()
    contended: bool = False
    suite: str | None = None
    """``name@sha256[:12]`` of the suite the questions came from."""


def suite_label(name: str, sha256: str) -> str:
    """How a suite is named on the leaderboard: its name and the start of its sha256."""
    return f"{name}@{sha256[:12]}"


@dataclass(frozen=True)
class Pin:
    """Operator pin: this device must run this model (and strategy, if given)."""

    device_id: str
    model_id: str
    strategy: str | None = None


@dataclass(frozen=True)
class Exclusion:
    """Operator exclusion: never run the model on a device, on a class, or (both None) anywhere."""

    model_id: str
    device_id: str | None = None
    device_class: str | None = None

    def applies(self, device_id: str, device_class: str) -> bool:
        """Whether this exclusion covers the device."""
        if self.device_id is not None:
            return self.device_id == device_id
        return self.device_class is None or self.device_class == device_class


class PlannerSettings(BaseModel):
    """Every knob of the planning core; one frozen object per deployment."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    weights: PerficsWeights = Field(default_factory=PerficsWeights, description="PeRFICS weights")
    confidence: float = Field(0.95, gt=0, lt=1, description="confidence of intervals and bounds")
    bootstrap_resamples: int = Field(1000, ge=50, description="bootstrap draws for B and I")
    seed: int = Field(0, description="seed of the bootstrap, so scores are reproducible")
    memory_margin_frac: float = Field(0.10, ge=0, description="added to the memory need")
    free_memory_headroom_mb: float = Field(64, ge=0, description="kept free on the device")
    disk_headroom_mb: float = Field(200, ge=0, description="kept free on the device's disk")
    hysteresis: float = Field(
        0.02, ge=0, description="relative Psi gain needed before a device changes its option"
    )
    refine_instruction_tokens: int = Field(
        64, ge=0, description="prompt tokens the critique and refine instructions add, each"
    )
    critique_tokens_frac: float = Field(
        0.5, ge=0, description="critique length as a fraction of the answer length"
    )
    default_p95_over_p50: float = Field(
        1.2, ge=1, description="p95/p50 latency ratio for predictions, before calibration"
    )
    nominal_sigma: float = Field(
        0.5, gt=0, description="log-sd of a prediction from a profile's nominal bandwidth"
    )
    z_upper: float = Field(1.645, ge=0, description="z of the one-sided bound on predictions")
    milp_time_limit_s: float = Field(
        30.0, gt=0, description="give up on the fleet MILP after this long (status says so)"
    )
    milp_rel_gap: float = Field(
        1e-4, ge=0, description="relative optimality gap at which the fleet MILP may stop"
    )
    milp_columns: int = Field(
        4,
        ge=1,
        description="best options per device offered to the fleet MILP (plus those "
        "a constraint needs)",
    )
    milp_cover: int = Field(
        4,
        ge=0,
        description="devices offered each model with a minimum count, as a multiple of "
        "the minimum, cheapest Psi loss first (0: every device that can run it)",
    )


class ProfilingSettings(BaseModel):
    """Who grades profiling benchmarks, how many questions a pair gets, when a bench is lost."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    judge_model_id: str | None = Field(
        None, description="registry model that grades answers 1-10; none: profile speed only"
    )
    reference_model_id: str | None = Field(
        None, description="registry model whose judged answers are q = 1; none: speed only"
    )
    questions_per_pair: int = Field(
        27, ge=1, description="questions per profiled (model, class) pair (3 per category)"
    )
    suite_id: str | None = Field(None, description="the suite benches run; none: the default")
    strategies: tuple[StrategyName, ...] = Field(
        (REFINE_1.name,), max_length=8, description="strategies each bench measures beside direct"
    )
    bench_timeout_s: float = Field(
        6 * 3600.0,
        gt=0,
        description="an unanswered bench command older than this no longer keeps its device "
        "and pair busy",
    )
