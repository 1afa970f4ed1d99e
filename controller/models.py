"""SQLModel tables of the controller and the ``XBase/XCreate/XUpdate/XPublic`` API schemas.

Table and column names are a contract with the API and planner code and with
the Alembic migrations: add columns, never rename. Time series (heartbeats,
metrics, states, benchmark rows) carry ``device_id`` without a foreign key so
ingest never fails on ordering; registry-like tables use foreign keys.
Every timestamp is timezone-aware UTC (:class:`UtcDateTime`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, Index, Integer, LargeBinary, String
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel, UniqueConstraint

from shared.messages import MAX_ANSWER_CHARS, DeviceId


class UtcDateTime(TypeDecorator[datetime]):
    """Stores UTC, returns aware datetimes, on SQLite (naive storage) and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Normalise to UTC; naive values are taken as UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Attach UTC to naive values read back from SQLite."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


BigId = BigInteger().with_variant(Integer(), "sqlite")
"""64-bit ids on PostgreSQL; SQLite autoincrements only ``INTEGER PRIMARY KEY``."""


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def _ts(*, index: bool = False, nullable: bool = True) -> Any:
    return Field(default=None, sa_type=UtcDateTime, index=index, nullable=nullable)


def _created() -> Any:
    return Field(default_factory=utcnow, sa_type=UtcDateTime, nullable=False)


def _json(default: Any = dict) -> Any:
    return Field(default_factory=default, sa_column=Column(JSON, nullable=False))


def _json_opt() -> Any:
    return Field(default=None, sa_column=Column(JSON, nullable=True))


def _strategy() -> Any:
    """A canonical ``shared.strategies`` name; None in rows from before strategies (by refine)."""
    return Field(default=None, max_length=24)


class Role(StrEnum):
    """API token roles, in increasing power; a client key may only chat through the gateway."""

    CLIENT = "client"
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"


class CommandStatus(StrEnum):
    """Life of a command: recorded, published, then acknowledged by the device."""

    PENDING = "pending"
    SENT = "sent"
    ACCEPTED = "accepted"
    OK = "ok"
    ERROR = "error"
    PUBLISH_FAILED = "publish_failed"


class PlanStatus(StrEnum):
    """A plan is computed as a draft, then applied (commands sent) or superseded.

    ``dry-run`` marks a plan computed only to be shown (``GET /plans/draft``): never stored.
    """

    DRAFT = "draft"
    APPLIED = "applied"
    SUPERSEDED = "superseded"
    FAILED = "failed"
    DRY_RUN = "dry-run"


class PinKind(StrEnum):
    """Operator constraints on the planner."""

    PIN = "pin"
    EXCLUDE = "exclude"


# --- device classes --------------------------------------------------------


class DeviceClassBase(SQLModel):
    """Budgets of one kind of box (mirrors ``shared.profiles.DeviceProfile``)."""

    name: str = Field(primary_key=True, max_length=64, description="class id, e.g. pi4-4gb")
    description: str = Field(default="", description="human-readable summary of the hardware")
    arch: str = Field(max_length=32, description="CPU architecture")
    memory_budget_mb: int = Field(gt=0, description="RAM the inference process may use")
    latency_budget_s: float = Field(gt=0, description="longest acceptable standard answer")
    disk_budget_mb: int = Field(gt=0, description="disk the model store may fill")
    threads: int = Field(ge=1, description="llama.cpp threads")
    n_ctx: int = Field(default=2048, ge=1, description="context size in tokens")
    kv_cache_type: str = Field(default="f16", max_length=16, description="KV-cache element type")


class DeviceClass(DeviceClassBase, table=True):
    """A device class, with the full validated profile kept as JSON."""

    __tablename__ = "device_class"
    profile: dict[str, Any] = _json()
    created_at: datetime = _created()
    updated_at: datetime = _created()


class DeviceClassPublic(DeviceClassBase):
    """A device class as the API returns it."""

    profile: dict[str, Any]
    created_at: datetime
    updated_at: datetime


# --- devices ---------------------------------------------------------------


class DeviceBase(SQLModel):
    """Operator-editable facts about a device."""

    name: str | None = Field(default=None, max_length=128, description="display name")
    device_class: str | None = Field(
        default=None, max_length=64, index=True, description="class id"
    )
    location: str | None = Field(default=None, max_length=256, description="where the box is")


class Device(DeviceBase, table=True):
    """A device: registry entry plus the latest hello, state and heartbeat it sent."""

    id: str = Field(primary_key=True, max_length=63)
    created_at: datetime = _created()
    enrolled: bool = Field(
        default=False, description="created by an operator, not just seen on MQTT"
    )
    last_seen_at: datetime | None = _ts(index=True)
    last_seq: int | None = Field(default=None, sa_type=BigInteger)
    cmd_seq: int = Field(
        default=0, sa_type=BigInteger, description="last seq used on its cmd topic"
    )
    agent_version: str | None = Field(default=None, max_length=64)
    arch: str | None = Field(default=None, max_length=32)
    cpu_model: str | None = Field(default=None, max_length=256)
    cores: int | None = None
    ram_total_mb: float | None = None
    disk_free_mb: float | None = None
    hardware: dict[str, Any] | None = _json_opt()
    engine: dict[str, Any] | None = _json_opt()
    """The agent's engine check from its hello (``shared.messages.EngineReport``)."""
    cached_models: list[dict[str, Any]] | None = _json_opt()
    chat_api_url: str | None = Field(default=None, max_length=512)
    hello_at: datetime | None = _ts()
    schema_version: int | None = Field(
        default=None, description="message version of its last hello; commands are sent in it"
    )
    status: str | None = Field(default=None, max_length=16, index=True)
    model_id: str | None = Field(default=None, max_length=128)
    model_sha256: str | None = Field(default=None, max_length=64)
    refine: bool | None = None
    strategy: str | None = _strategy()
    activity: str | None = Field(default=None, max_length=32)
    state_detail: str | None = Field(default=None, max_length=1024)
    state_at: datetime | None = _ts()
    last_heartbeat_at: datetime | None = _ts()
    last_heartbeat: dict[str, Any] | None = _json_opt()


class DeviceCreate(DeviceBase):
    """An operator enrolling a device (the id pattern is checked here and shown in OpenAPI)."""

    id: DeviceId


class DeviceUpdate(SQLModel):
    """Fields an operator may change."""

    name: str | None = None
    device_class: str | None = None
    location: str | None = None


class DevicePublic(DeviceBase):
    """A device as the API returns it."""

    id: str
    created_at: datetime
    enrolled: bool
    last_seen_at: datetime | None
    agent_version: str | None
    arch: str | None
    cores: int | None
    ram_total_mb: float | None
    hardware: dict[str, Any] | None
    engine: dict[str, Any] | None
    cached_models: list[dict[str, Any]] | None
    hello_at: datetime | None
    status: str | None
    model_id: str | None
    refine: bool | None
    strategy: str | None
    activity: str | None
    state_at: datetime | None
    last_heartbeat_at: datetime | None
    last_heartbeat: dict[str, Any] | None


# --- model registry --------------------------------------------------------


class ModelBase(SQLModel):
    """Operator-editable facts about a registry model."""

    name: str = Field(max_length=256, description="display name")
    description: str = Field(default="", description="notes for operators")
    extrinsic_merit: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="PeRFICS E: operator-set merit (licence, languages, trust)",
    )


class Model(ModelBase, table=True):
    """A GGUF file in the registry, with what its header says and its memory estimate."""

    id: str = Field(primary_key=True, max_length=128)
    sha256: str = Field(max_length=64, unique=True, index=True)
    size_bytes: int = Field(sa_type=BigInteger)
    path: str = Field(max_length=1024, description="where the file is on the controller")
    filename: str = Field(max_length=256)
    architecture: str | None = Field(default=None, max_length=64)
    quantization: str | None = Field(default=None, max_length=32)
    parameters: int | None = Field(default=None, sa_type=BigInteger)
    context_length: int | None = None
    instruction_tuned: bool | None = None
    gguf_metadata: dict[str, Any] = _json()
    memory_estimate_mb: float | None = Field(
        default=None, description="at memory_estimate_n_ctx, f16 KV"
    )
    memory_estimate_n_ctx: int | None = None
    memory_estimate: dict[str, Any] | None = _json_opt()
    created_at: datetime = _created()


class ModelCreate(ModelBase):
    """Importing a model from a path on the controller."""

    id: str = Field(max_length=128, regex=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
    path: str


class ModelUpdate(SQLModel):
    """Fields an operator may change."""

    name: str | None = None
    description: str | None = None
    extrinsic_merit: float | None = Field(default=None, ge=0, le=1)


class ModelPublic(ModelBase):
    """A registry model as the API returns it."""

    id: str
    sha256: str
    size_bytes: int
    filename: str
    architecture: str | None
    quantization: str | None
    parameters: int | None
    context_length: int | None
    instruction_tuned: bool | None
    memory_estimate_mb: float | None
    memory_estimate_n_ctx: int | None
    created_at: datetime


# --- suites ----------------------------------------------------------------


class SuitePublic(SQLModel):
    """An evaluation suite as the API lists it (its items stay in the fleet)."""

    id: str = Field(primary_key=True, max_length=80)
    version: str = Field(max_length=40)
    sha256: str = Field(max_length=64, index=True)
    description: str = ""
    n_items: int
    counts: dict[str, int] = _json()
    created_by: str | None = Field(default=None, max_length=128)
    created_at: datetime = _created()


class Suite(SuitePublic, table=True):
    """An uploaded suite: its exact bytes, which agents fetch and verify by sha256."""

    content: bytes = Field(sa_type=LargeBinary)


# --- benchmarks ------------------------------------------------------------


class BenchmarkRun(SQLModel, table=True):
    """One ``bench`` message: a model benchmarked on a device (speed, memory, latency)."""

    __tablename__ = "benchmark_run"
    __table_args__ = (UniqueConstraint("device_id", "run_id", "model_id"),)
    id: int | None = Field(default=None, primary_key=True)
    device_id: str = Field(max_length=63, index=True)
    device_class: str = Field(max_length=64, index=True)
    model_id: str = Field(max_length=128, index=True)
    model_sha256: str | None = Field(default=None, max_length=64)
    run_id: str = Field(max_length=128)
    command_id: str | None = Field(default=None, max_length=64)
    seq: int = Field(sa_type=BigInteger)
    threads: int
    n_ctx: int
    kv_cache_type: str = Field(default="f16", max_length=16)
    pp_tokens: int = 0
    tg_tokens: int = 0
    prefill_tok_s: float | None = None
    prefill_tok_s_std: float | None = None
    decode_tok_s: float | None = None
    decode_tok_s_std: float | None = None
    speed_samples: int | None = None
    zero_shot_ttft_ms_p50: float | None = None
    zero_shot_ttft_ms_p95: float | None = None
    zero_shot_e2e_ms_p50: float | None = None
    zero_shot_e2e_ms_p95: float | None = None
    zero_shot_generated_tokens_mean: float | None = None
    zero_shot_n: int | None = None
    refined_ttft_ms_p50: float | None = None
    refined_ttft_ms_p95: float | None = None
    refined_e2e_ms_p50: float | None = None
    refined_e2e_ms_p95: float | None = None
    refined_generated_tokens_mean: float | None = None
    refined_n: int | None = None
    peak_rss_mb: float
    cpu_seconds: float = 0.0
    load_1m_before: float = 0.0
    load_1m_after: float = 0.0
    contended: bool = False
    judge_model_id: str | None = Field(default=None, max_length=128)
    judge_sha256: str | None = Field(default=None, max_length=64)
    reference_model_id: str | None = Field(default=None, max_length=128)
    suite_name: str | None = Field(default=None, max_length=80)
    suite_sha256: str | None = Field(default=None, max_length=64)
    model_ref: dict[str, Any] = _json()
    started_at: datetime | None = _ts()
    finished_at: datetime | None = _ts()
    sent_at: datetime = _ts(nullable=False)
    received_at: datetime = _created()


class BenchmarkResult(SQLModel, table=True):
    """Quality and cost of one (device, model, category, refined) from one run."""

    __tablename__ = "benchmark_result"
    __table_args__ = (Index("ix_benchmark_result_model_class", "model_id", "device_class"),)
    id: int | None = Field(default=None, primary_key=True)
    run_pk: int = Field(foreign_key="benchmark_run.id", index=True, ondelete="CASCADE")
    device_id: str = Field(max_length=63, index=True)
    device_class: str = Field(max_length=64)
    model_id: str = Field(max_length=128)
    category: str = Field(max_length=40, index=True)
    type: str = Field(default="judged", max_length=8)
    refined: bool
    strategy: str | None = _strategy()
    n: int
    judge_mean: float | None = None
    judge_missing: int = 0
    exact_accuracy: float | None = None
    pct_of_reference: float | None = None
    decode_tok_s: float | None = Field(default=None, description="throughput of the run")
    prefill_tok_s: float | None = None
    e2e_ms_p50: float | None = Field(default=None, description="latency of this mode in the run")
    e2e_ms_p95: float | None = None
    peak_rss_mb: float
    measured_at: datetime = _ts(nullable=False)


class BenchmarkQuestion(SQLModel, table=True):
    """One question's outcome in one mode (for confidence intervals and SMART bounds)."""

    __tablename__ = "benchmark_question"
    __table_args__ = (Index("ix_benchmark_question_model_class", "model_id", "device_class"),)
    id: int | None = Field(default=None, sa_type=BigId, primary_key=True)
    run_pk: int = Field(foreign_key="benchmark_run.id", index=True, ondelete="CASCADE")
    device_id: str = Field(max_length=63)
    device_class: str = Field(max_length=64)
    model_id: str = Field(max_length=128)
    item_id: str = Field(max_length=128)
    type: str = Field(default="judged", max_length=8)
    category: str = Field(max_length=40)
    refined: bool
    strategy: str | None = _strategy()
    judge_score: float | None = None
    reference_judge_score: float | None = None
    correct: bool | None = None
    correct_norm: bool | None = None
    reference_correct: bool | None = None
    chosen: int | None = None
    answer: str | None = Field(default=None, max_length=MAX_ANSWER_CHARS)
    judge_model_id: str | None = Field(default=None, max_length=128)
    judge_sha256: str | None = Field(default=None, max_length=64)
    """Who graded a judged item: its run's judge, or the device a judge step ran on."""
    e2e_ms: float
    generated_tokens: int
    prompt_tokens_evaluated: int
    confidence: float | None = None
    """vote:k / verify-refine: the strategy's own check, for calibrating escalation."""
    measured_at: datetime = _ts(nullable=False)


class BenchmarkResultPublic(SQLModel):
    """A benchmark result row as the API returns it."""

    id: int
    run_pk: int
    device_id: str
    device_class: str
    model_id: str
    category: str
    type: str
    refined: bool
    strategy: str | None = _strategy()
    n: int
    judge_mean: float | None
    judge_missing: int
    exact_accuracy: float | None
    pct_of_reference: float | None
    decode_tok_s: float | None
    prefill_tok_s: float | None
    e2e_ms_p50: float | None
    e2e_ms_p95: float | None
    peak_rss_mb: float
    measured_at: datetime


# --- time series from devices ---------------------------------------------


class ServingMetric(SQLModel, table=True):
    """One ``metrics`` report: serving counters over a window."""

    __tablename__ = "serving_metric"
    __table_args__ = (Index("ix_serving_metric_device_time", "device_id", "sent_at"),)
    id: int | None = Field(default=None, sa_type=BigId, primary_key=True)
    device_id: str = Field(max_length=63)
    seq: int = Field(sa_type=BigInteger)
    sent_at: datetime = _ts(index=True, nullable=False)
    received_at: datetime = _created()
    window_s: float
    model_id: str | None = Field(default=None, max_length=128)
    requests: int = 0
    refined_requests: int = 0
    errors: int = 0
    rejected: int = 0
    prompt_tokens: int = 0
    generated_tokens: int = 0
    decode_tok_s: float | None = None
    ttft_ms_p50: float | None = None
    ttft_ms_p95: float | None = None
    latency_ms_p50: float | None = None
    latency_ms_p95: float | None = None


class Heartbeat(SQLModel, table=True):
    """One ``heartbeat``: vital signs of a device."""

    __tablename__ = "heartbeat"
    __table_args__ = (Index("ix_heartbeat_device_time", "device_id", "sent_at"),)
    id: int | None = Field(default=None, sa_type=BigId, primary_key=True)
    device_id: str = Field(max_length=63)
    seq: int = Field(sa_type=BigInteger)
    sent_at: datetime = _ts(nullable=False)
    received_at: datetime = _created()
    uptime_s: float
    load_1m: float
    cpu_percent: float | None = None
    mem_available_mb: float
    rss_mb: float | None = None
    disk_free_mb: float | None = None
    temperature_c: float | None = None
    outbox_depth: int = 0
    download: dict[str, Any] | None = _json_opt()


class DeviceState(SQLModel, table=True):
    """State history: every ``state`` message a device sent."""

    __tablename__ = "device_state"
    __table_args__ = (Index("ix_device_state_device_time", "device_id", "sent_at"),)
    id: int | None = Field(default=None, sa_type=BigId, primary_key=True)
    device_id: str = Field(max_length=63)
    seq: int = Field(sa_type=BigInteger)
    sent_at: datetime = _ts(nullable=False)
    received_at: datetime = _created()
    status: str = Field(max_length=16)
    model_id: str | None = Field(default=None, max_length=128)
    model_sha256: str | None = Field(default=None, max_length=64)
    refine: bool = False
    strategy: str | None = _strategy()
    activity: str = Field(default="idle", max_length=32)
    detail: str | None = Field(default=None, max_length=1024)


class IngestedMessage(SQLModel, table=True):
    """Ledger of (device_id, seq) already stored: what makes ingest idempotent."""

    __tablename__ = "ingested_message"
    device_id: str = Field(primary_key=True, max_length=63)
    seq: int = Field(primary_key=True, sa_type=BigInteger)
    kind: str = Field(max_length=16)
    sent_at: datetime = _ts(nullable=False)
    received_at: datetime = _created()


# --- commands --------------------------------------------------------------


class Command(SQLModel, table=True):
    """A command sent to one device, and what became of it."""

    id: str = Field(primary_key=True, max_length=64, description="the command_id")
    device_id: str = Field(foreign_key="device.id", max_length=63, index=True, ondelete="CASCADE")
    type: str = Field(max_length=32)
    body: dict[str, Any] = _json()
    status: str = Field(default=CommandStatus.PENDING.value, max_length=16, index=True)
    reason: str | None = Field(default=None, max_length=1024)
    seq: int | None = Field(default=None, sa_type=BigInteger)
    plan_id: int | None = Field(
        default=None, foreign_key="plan.id", index=True, ondelete="SET NULL"
    )
    created_by: str | None = Field(default=None, max_length=128)
    created_at: datetime = _created()
    sent_at: datetime | None = _ts()
    acked_at: datetime | None = _ts()


class CommandPublic(SQLModel):
    """A command as the API returns it."""

    id: str
    device_id: str
    type: str
    body: dict[str, Any]
    status: str
    reason: str | None
    plan_id: int | None
    created_by: str | None
    created_at: datetime
    sent_at: datetime | None
    acked_at: datetime | None


class CommandAck(SQLModel, table=True):
    """An ``ack`` message (kept even when it names an unknown command)."""

    __tablename__ = "command_ack"
    id: int | None = Field(default=None, primary_key=True)
    command_id: str = Field(max_length=64, index=True)
    device_id: str = Field(max_length=63, index=True)
    seq: int = Field(sa_type=BigInteger)
    status: str = Field(max_length=16)
    reason: str | None = None
    detail: dict[str, Any] = _json()
    sent_at: datetime = _ts(nullable=False)
    received_at: datetime = _created()


# --- plans -----------------------------------------------------------------


class Plan(SQLModel, table=True):
    """One planner result over the fleet, with its parameters and reasons."""

    id: int | None = Field(default=None, primary_key=True)
    status: str = Field(default=PlanStatus.DRAFT.value, max_length=16, index=True)
    params: dict[str, Any] = _json()
    summary: str = ""
    reasons: list[Any] = _json(list)
    created_by: str | None = Field(default=None, max_length=128)
    created_at: datetime = _created()
    applied_at: datetime | None = _ts()


class Assignment(SQLModel, table=True):
    """What a plan gives one device (``model_id`` None: nothing fits), and why."""

    id: int | None = Field(default=None, primary_key=True)
    plan_id: int = Field(foreign_key="plan.id", index=True, ondelete="CASCADE")
    device_id: str = Field(max_length=63, index=True)
    device_class: str | None = Field(default=None, max_length=64)
    model_id: str | None = Field(default=None, max_length=128)
    refine: bool = False
    strategy: str | None = _strategy()
    score: float | None = None
    reasons: list[Any] = _json(list)
    command_id: str | None = Field(default=None, max_length=64)
    status: str = Field(default="planned", max_length=16)


class Pin(SQLModel, table=True):
    """An operator constraint: pin a model to (or exclude it from) a device or class."""

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(default=PinKind.PIN.value, max_length=16)
    device_id: str | None = Field(default=None, max_length=63, index=True)
    device_class: str | None = Field(default=None, max_length=64, index=True)
    model_id: str = Field(max_length=128)
    refine: bool | None = None
    strategy: str | None = _strategy()
    reason: str = ""
    created_by: str | None = Field(default=None, max_length=128)
    created_at: datetime = _created()


# --- dead letters ----------------------------------------------------------


class DeadLetter(SQLModel, table=True):
    """A rejected MQTT message, kept with the reason so nothing is lost silently."""

    __tablename__ = "dead_letter"
    id: int | None = Field(default=None, sa_type=BigId, primary_key=True)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime, index=True)
    topic: str = Field(sa_type=String(1024))
    device_id: str | None = Field(default=None, max_length=63, index=True)
    reason: str = Field(max_length=32, index=True)
    detail: str = ""
    payload: bytes = Field(default=b"", sa_type=LargeBinary)
    payload_size: int = 0


class DeadLetterCount(SQLModel, table=True):
    """Running count of dead letters per reason (survives table pruning)."""

    __tablename__ = "dead_letter_count"
    reason: str = Field(primary_key=True, max_length=32)
    count: int = Field(default=0, sa_type=BigInteger)
    last_at: datetime | None = _ts()


class DeadLetterPublic(SQLModel):
    """A dead letter as the API returns it (payload as text, possibly truncated)."""

    id: int
    received_at: datetime
    topic: str
    device_id: str | None
    reason: str
    detail: str
    payload_size: int


# --- credentials -----------------------------------------------------------


class ApiToken(SQLModel, table=True):
    """An API bearer token; only its SHA-256 is stored."""

    __tablename__ = "api_token"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=128)
    token_hash: str = Field(max_length=128, unique=True, index=True)
    prefix: str = Field(max_length=16, description="first characters, to recognise a token")
    role: str = Field(default=Role.VIEWER.value, max_length=16)
    created_by: str | None = Field(default=None, max_length=128)
    created_at: datetime = _created()
    expires_at: datetime | None = _ts()
    last_used_at: datetime | None = _ts()
    revoked_at: datetime | None = _ts()


class ApiTokenCreate(SQLModel):
    """A token to create (the secret is returned once)."""

    name: str = Field(max_length=128)
    role: Role = Role.VIEWER
    expires_at: datetime | None = None


class ApiTokenPublic(SQLModel):
    """A token as the API lists it (never the secret)."""

    id: int
    name: str
    prefix: str
    role: str
    created_by: str | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class MqttCredential(SQLModel, table=True):
    """A device's MQTT login; the hash is in Mosquitto's PBKDF2-SHA512 format."""

    __tablename__ = "mqtt_credential"
    id: int | None = Field(default=None, primary_key=True)
    device_id: str = Field(foreign_key="device.id", max_length=63, index=True, ondelete="CASCADE")
    username: str = Field(max_length=63, index=True)
    password_hash: str = Field(max_length=256)
    created_at: datetime = _created()
    revoked_at: datetime | None = _ts()


class EnrollmentToken(SQLModel, table=True):
    """A one-time token a device exchanges for its MQTT credentials; only the hash is stored."""

    __tablename__ = "enrollment_token"
    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=128, unique=True, index=True)
    device_id: str | None = Field(
        default=None, max_length=63, description="fixed id, or chosen at use"
    )
    device_class: str | None = Field(default=None, max_length=64)
    created_by: str | None = Field(default=None, max_length=128)
    created_at: datetime = _created()
    expires_at: datetime | None = _ts()
    used_at: datetime | None = _ts()
    used_by_device: str | None = Field(default=None, max_length=63)


# --- coordination ----------------------------------------------------------


class Lease(SQLModel, table=True):
    """Who runs a piece of singleton work (the planner loop) until when; see ``core/lease.py``."""

    name: str = Field(primary_key=True, max_length=64)
    holder: str = Field(max_length=200)
    token: int = Field(
        sa_type=BigInteger, description="fencing token: rises each time the lease changes hands"
    )
    expires_epoch_s: float = Field(description="expiry, seconds since the epoch, database clock")
