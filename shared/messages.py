"""Versioned MQTT payloads: an envelope around one body model per topic kind.

Every payload is JSON ``{schema, device_id, seq, sent_at, body}``. ``schema``
is ``"<kind>/<version>"`` so a payload names its own type; ``seq`` rises per
device and makes ingest idempotent under QoS 1 redelivery. Inbound bodies
tolerate unknown fields (a newer agent may add some); the envelope does not.
Parsing never raises anything but :class:`MessageRejected`, whose ``reason``
is a stable code for counting dead letters.

Version 2: an option is (model, strategy). State, assign and bench rows carry a
``strategy`` name; a version-1 peer sends only the ``refine`` flag, which
means ``refine:1`` (``served_by``). Both versions are read; a side writes 2,
except to a device whose last hello was version 1 (it would refuse a 2).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AliasChoices,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)

from shared.strategies import DIRECT, Strategy, StrategyName
from shared.topics import DEVICE_ID_PATTERN, TopicError, TopicKind, Topics

SCHEMA_VERSION = 2
SUPPORTED_VERSIONS = frozenset({1, 2})
"""Versions this side reads: 1 is an agent or controller from before strategies."""
MAX_PAYLOAD_BYTES = 1_048_576
"""Larger payloads are refused before JSON parsing (a bench report is ~50 kB)."""

MAX_TEXT_CHARS = 4096
"""Longest string any body field may hold (ids and free text are bounded tighter below)."""


def _cut_to(limit: int) -> BeforeValidator:
    """Free text is cut to ``limit`` characters (the column it is stored in), never refused."""

    def cut(text: object) -> object:
        if isinstance(text, str) and len(text) > limit:
            return text[: limit - 1] + "…"
        return text

    return BeforeValidator(cut)


DeviceId = Annotated[str, StringConstraints(pattern=rf"^{DEVICE_ID_PATTERN}$")]
ModelId = Annotated[str, StringConstraints(min_length=1, max_length=128)]
ShortName = Annotated[str, StringConstraints(max_length=64)]
FreeText = Annotated[str, _cut_to(1024)]
Label = Annotated[str, _cut_to(256)]
Category = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
NonNegFloat = Annotated[float, Field(ge=0)]
NonNegInt = Annotated[int, Field(ge=0)]
Rating = Annotated[float, Field(ge=1, le=10)]
"""A judge's 1-10 grade."""


class Body(BaseModel):
    """Base of every body: unknown fields are kept quiet, not rejected; every string bounded."""

    model_config = ConfigDict(extra="ignore", frozen=True, str_max_length=MAX_TEXT_CHARS)


# --- hello -----------------------------------------------------------------


class HardwareInfo(Body):
    """What the device is, as probed at start-up."""

    arch: ShortName = Field(description="machine architecture, e.g. aarch64 or x86_64")
    cpu_model: Label = ""
    cores: int = Field(ge=1)
    ram_total_mb: NonNegFloat
    ram_available_mb: NonNegFloat
    disk_free_mb: NonNegFloat
    pi_model: Label | None = Field(None, description="from /proc/device-tree/model on a Pi")
    temperature_c: float | None = None


class CachedModel(Body):
    """A model file present in the device's store."""

    model_id: ModelId
    sha256: Sha256
    size_bytes: NonNegInt


class EngineReport(Body):
    """The agent's check of its llama.cpp engine: a smoke generation in a child process."""

    ok: bool
    reason: str | None = Field(None, description="why the engine cannot serve, and the fix")
    crash: str | None = Field(None, description="how the check's child died: SIGSEGV, timeout...")
    llama_cpp_python: str | None = None
    cpu_backend: str | None = Field(None, description="the ggml CPU library loaded")
    system_info: str | None = Field(None, description="llama.cpp's system info (CPU features)")
    amx_kernels: bool | None = Field(None, description="AMX tile code in the CPU library")
    smoke_tokens: NonNegInt | None = None
    smoke_seconds: NonNegFloat | None = None


class HelloBody(Body):
    """Retained announcement: hardware, software and what is cached."""

    agent_version: ShortName
    device_class: ShortName
    hardware: HardwareInfo
    cached_models: list[CachedModel] = Field(default_factory=list, max_length=1000)
    chat_api_url: str | None = Field(None, max_length=512)
    engine: EngineReport | None = Field(None, description="None: from an agent that predates it")


# --- state -----------------------------------------------------------------


class DeviceStatus(StrEnum):
    """Lifecycle states; ``offline`` is the broker-published Last Will."""

    ONLINE = "online"
    OFFLINE = "offline"
    STOPPED = "stopped"


class StateBody(Body):
    """Retained state: is the device up, and what is it serving."""

    status: DeviceStatus
    model_id: ModelId | None = None
    model_sha256: Sha256 | None = None
    refine: bool = False
    strategy: StrategyName | None = Field(None, description="none (older agents): by refine")
    activity: ShortName = Field(
        "idle", description="idle, serving, benchmarking, downloading, error"
    )
    detail: FreeText | None = None

    @property
    def served_by(self) -> str:
        """The strategy served (an older agent's ``refine: true`` is refine:1)."""
        return self.strategy or Strategy.from_refine(self.refine).name


# --- heartbeat -------------------------------------------------------------


class DownloadProgress(Body):
    """A model download under way."""

    model_id: ModelId
    bytes_done: NonNegInt
    bytes_total: NonNegInt


class QueueDepth(Body):
    """The chat API's queue when a heartbeat was sent: what the gateway ranks devices by."""

    active: NonNegInt = Field(description="requests the model is decoding")
    waiting: NonNegInt = Field(description="requests admitted and waiting for a slot")
    bound: NonNegInt = Field(description="running plus waiting requests the device admits")


class HeartbeatBody(Body):
    """Periodic vital signs."""

    uptime_s: NonNegFloat
    load_1m: NonNegFloat
    cpu_percent: NonNegFloat | None = None
    mem_available_mb: NonNegFloat
    rss_mb: NonNegFloat | None = None
    disk_free_mb: NonNegFloat | None = None
    temperature_c: float | None = None
    outbox_depth: NonNegInt = 0
    download: DownloadProgress | None = None
    queue: QueueDepth | None = Field(None, description="absent from agents before the gateway")


# --- metrics ---------------------------------------------------------------


class MetricsBody(Body):
    """Serving metrics since the previous report."""

    window_s: NonNegFloat
    model_id: ModelId | None = None
    requests: NonNegInt = 0
    refined_requests: NonNegInt = 0
    errors: NonNegInt = 0
    rejected: NonNegInt = Field(0, description="requests refused because the queue was full")
    prompt_tokens: NonNegInt = 0
    generated_tokens: NonNegInt = 0
    decode_tok_s: NonNegFloat | None = None
    ttft_ms_p50: NonNegFloat | None = None
    ttft_ms_p95: NonNegFloat | None = None
    latency_ms_p50: NonNegFloat | None = None
    latency_ms_p95: NonNegFloat | None = None


# --- bench -----------------------------------------------------------------


class ModelRef(Body):
    """Identifies a model file and what it is."""

    model_id: ModelId
    sha256: Sha256 | None = None
    architecture: str | None = None
    quantization: str | None = None
    parameters: NonNegInt | None = None
    file_size_bytes: NonNegInt | None = None
    instruction_tuned: bool | None = None


class Spread(Body):
    """Mean and sample standard deviation of repeated measurements."""

    mean: NonNegFloat
    std: NonNegFloat
    n: int = Field(ge=1)


class AnswerLatency(Body):
    """Latency of whole answers: time to first token and end to end."""

    ttft_ms_p50: NonNegFloat
    ttft_ms_p95: NonNegFloat
    e2e_ms_p50: NonNegFloat
    e2e_ms_p95: NonNegFloat
    generated_tokens_mean: NonNegFloat
    n: int = Field(ge=1)


ItemType = Literal["judged", "exact", "choice"]
MAX_ANSWER_CHARS = 1000
"""A per-item answer is cut to this many characters (a report of 200 rows stays ~250 kB)."""


class QuestionResult(Body):
    """One suite item's outcome for one mode (zero-shot or refined).

    Judged items carry judge scores (1-10); exact and choice items carry
    ``correct``, and the reference model's own ``reference_correct`` on the
    same item. ``question_id`` and ``exact_correct`` are read as older agents
    named them.
    """

    item_id: str = Field(max_length=128, validation_alias=AliasChoices("item_id", "question_id"))
    type: ItemType = "judged"
    category: Category
    refined: bool
    judge_score: float | None = Field(None, ge=1, le=10, description="None: judge reply unparsable")
    reference_judge_score: float | None = Field(None, ge=1, le=10)
    correct: bool | None = Field(
        None,
        validation_alias=AliasChoices("correct", "exact_correct"),
        description="exact: the normaliser's verdict; choice: acc; None: nothing to check",
    )
    correct_norm: bool | None = Field(None, description="choice: acc_norm (by UTF-8 bytes)")
    reference_correct: bool | None = Field(None, description="the reference model on this item")
    chosen: int | None = Field(None, ge=0, description="choice: the argmax of the summed log-prob")
    answer: str | None = Field(None, max_length=MAX_ANSWER_CHARS, description="the model's text")
    e2e_ms: NonNegFloat
    generated_tokens: NonNegInt
    prompt_tokens_evaluated: NonNegInt
    strategy: StrategyName | None = Field(
        None, description="the test-time strategy that served it; none (older agents): by refined"
    )
    confidence: float | None = Field(
        None,
        ge=0,
        le=1,
        description="vote:k and verify-refine: how sure the strategy's own check was (the "
        "gateway's escalation is calibrated on it); none: no check, or an older agent",
    )

    @property
    def served_by(self) -> str:
        """The strategy's canonical name (an older agent's ``refined`` row was ``refine:1``)."""
        return self.strategy or Strategy.from_refine(self.refined).name


class CategoryQuality(Body):
    """Quality in one category, item type and mode, as in the seed paper's Table 3."""

    category: Category
    type: ItemType = "judged"
    refined: bool
    strategy: StrategyName | None = Field(None, description="none: by refined (old agents)")
    n: NonNegInt
    judge_mean: float | None = None
    judge_missing: NonNegInt = 0
    exact_accuracy: float | None = Field(None, ge=0, le=1)
    pct_of_reference: float | None = Field(None, description="100 * judge_mean / reference's")


class SuiteRef(Body):
    """Which suite, which version: its sha256 identifies the exact items."""

    name: str = Field(max_length=80)
    version: str = Field("1", max_length=40)
    sha256: Sha256


class BenchBody(Body):
    """One benchmark run of one model on one device: speed, memory and quality."""

    run_id: str
    command_id: str | None = None
    model: ModelRef
    device_class: str
    threads: int = Field(ge=1)
    n_ctx: int = Field(ge=1)
    kv_cache_type: str = "f16"
    pp_tokens: NonNegInt = 0
    tg_tokens: NonNegInt = 0
    prefill_tok_s: Spread | None = None
    decode_tok_s: Spread | None = None
    zero_shot: AnswerLatency | None = None
    refined: AnswerLatency | None = None
    peak_rss_mb: NonNegFloat
    cpu_seconds: NonNegFloat = 0
    load_1m_before: NonNegFloat = 0
    load_1m_after: NonNegFloat = 0
    contended: bool = Field(False, description="other busy threads competed for the cores")
    judge: ModelRef | None = None
    reference: ModelRef | None = None
    categories: list[CategoryQuality] = Field(default_factory=list)
    suite: SuiteRef | None = None
    questions: list[QuestionResult] = Field(default_factory=list)
    started_at: AwareDatetime | None = None
    finished_at: AwareDatetime | None = None


# --- cmd and ack -----------------------------------------------------------


class AssignCommand(Body):
    """Load this model (downloading it first if needed) and serve it."""

    type: Literal["assign"] = "assign"
    command_id: str = Field(min_length=1, max_length=64)
    model_id: ModelId
    sha256: Sha256
    url: str
    size_bytes: int = Field(ge=1)
    refine: bool = False
    strategy: StrategyName | None = Field(
        None, description="test-time strategy to serve with; none (older controllers): by refine"
    )
    n_ctx: int | None = Field(None, ge=64)

    def served_strategy(self) -> Strategy:
        """The strategy to serve with (``refine: true`` from an older controller is refine:1)."""
        return Strategy.parse(self.strategy) if self.strategy else Strategy.from_refine(self.refine)


class ModelSource(Body):
    """Where a device downloads a model it lacks (the registry's file route), and its identity."""

    model_id: ModelId
    sha256: Sha256
    url: str
    size_bytes: int = Field(ge=1)


class SuiteSource(Body):
    """The suite a bench runs: a built-in one by name, or an uploaded one to fetch from ``url``.

    ``sha256`` pins the exact items either way; a device refuses a file that does not match.
    """

    suite_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
    sha256: Sha256
    url: str | None = Field(None, max_length=2048, description="none: a built-in suite")


class BenchCommand(Body):
    """Benchmark models (fetching any named in ``sources`` that are missing) and publish results.

    ``reference_model_id`` and ``sources`` were added later as optional fields, so the
    schema stays ``cmd/1``: an older agent ignores them (bodies tolerate unknown fields)
    and an older controller simply never sends them.
    """

    type: Literal["bench"] = "bench"
    command_id: str = Field(min_length=1, max_length=64)
    model_ids: list[str] = Field(default_factory=list, description="empty: the serving model")
    categories: list[Category] = Field(default_factory=list, description="empty: all")
    judge_model_id: str | None = None
    reference_model_id: str | None = Field(
        None, description="model whose judged answers are the 100 % of q(m, k); none: no quality"
    )
    refine: bool = True
    strategies: list[StrategyName] = Field(
        default_factory=list,
        max_length=8,
        description="test-time strategies to bench; empty (older controllers): by refine",
    )
    max_questions: int | None = Field(None, ge=1)
    sources: list[ModelSource] = Field(
        default_factory=list,
        description="downloads for named models (candidates, judge, reference) not on the device",
    )
    suite: SuiteSource | None = Field(None, description="none: the built-in nine-category set")

    def strategy_list(self) -> list[Strategy]:
        """The strategies to run: ``direct`` first, then those named (or ``refine:1``)."""
        named = [Strategy.parse(n) for n in self.strategies] or [Strategy.from_refine(self.refine)]
        return list(dict.fromkeys([DIRECT, *named]))

    def named_model_ids(self) -> list[str]:
        """Every model the command names (candidates, judge, reference), each once, in order."""
        named = [*self.model_ids, self.judge_model_id, self.reference_model_id]
        return list(dict.fromkeys(m for m in named if m))

    def source(self, model_id: str) -> ModelSource | None:
        """The download source given for ``model_id``, if any."""
        return next((s for s in self.sources if s.model_id == model_id), None)


MAX_GRADE_TASKS = 32
"""Answers one judge command carries (its worst case, every text at its bound, is ~550 kB)."""
MAX_GRADED_TEXT_CHARS = 8000
"""A graded question or reference answer is as long as a suite item may be."""


class GradeTask(Body):
    """One answer to grade, and where its grade is stored (``run_pk``, ``item_id``, ``target``).

    The target fields are the controller's own: the grade comes back by position
    and is stored where the controller's copy of the command says, so a device
    cannot place a grade anywhere else.
    """

    model_config = ConfigDict(extra="ignore", frozen=True, str_max_length=MAX_GRADED_TEXT_CHARS)

    run_pk: int = Field(ge=1)
    item_id: str = Field(max_length=128)
    target: Literal["answer", "reference"] = Field(
        description="answer: one stored answer (``row_id``); reference: the reference model's "
        "zero-shot answer on the same item, graded by the same judge, for every row of the item"
    )
    row_id: int | None = Field(None, ge=1, description="the stored answer's row (target answer)")
    question: str = Field(min_length=1)
    reference: str | None = Field(None, description="the suite's reference answer, if any")
    answer: str = Field(max_length=MAX_ANSWER_CHARS)


class JudgeCommand(Body):
    """Grade answers other devices generated, with the judge model (fetched from ``source``).

    Sent to the strongest online device that can hold the judge, so a class too
    small for the judge still has its answers graded.
    """

    type: Literal["judge"] = "judge"
    command_id: str = Field(min_length=1, max_length=64)
    judge_model_id: ModelId
    source: ModelSource | None = Field(None, description="none: the judge is on the device")
    tasks: list[GradeTask] = Field(min_length=1, max_length=MAX_GRADE_TASKS)


class JudgeResult(Body):
    """The ``ok`` ack detail of a judge command: one score per task, in order, and the judge.

    A score is None when the judge's reply could not be read (missing, never 0).
    """

    type: Literal["judge"] = "judge"
    judge: ModelRef
    scores: list[Rating | None] = Field(max_length=MAX_GRADE_TASKS)


class ReloadConfigCommand(Body):
    """Re-read the configuration file and profile."""

    type: Literal["reload-config"] = "reload-config"
    command_id: str = Field(min_length=1, max_length=64)


class IdentifyCommand(Body):
    """Blink the status LED so a person can find the box."""

    type: Literal["identify"] = "identify"
    command_id: str = Field(min_length=1, max_length=64)
    seconds: float = Field(10, gt=0, le=600)


AnyCommand = AssignCommand | BenchCommand | JudgeCommand | ReloadConfigCommand | IdentifyCommand
"""Every command a device understands; the one place the union is spelled."""
Command = Annotated[AnyCommand, Field(discriminator="type")]


class CmdBody(Body):
    """A command to one device."""

    command: Command


class AckStatus(StrEnum):
    """``accepted``: long work started; ``ok``/``error``: finished."""

    ACCEPTED = "accepted"
    OK = "ok"
    ERROR = "error"


class AckBody(Body):
    """The answer to a command, echoing its ``command_id``."""

    command_id: str = Field(min_length=1, max_length=64)
    status: AckStatus
    reason: FreeText | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


MAX_STORED_RANGES = 1000
"""Seq ranges in one ``stored`` confirmation (the controller splits longer lists)."""
SeqRange = tuple[NonNegInt, NonNegInt]


class StoredBody(Body):
    """The controller's end-to-end acknowledgement: these of the device's seqs are stored.

    ``seqs`` are inclusive ``[first, last]`` ranges. Every message the
    controller has handled for good is named (stored, a duplicate of a stored
    one, or kept as a dead letter), so the agent may forget it; until then the
    agent keeps it even after the broker's PUBACK (the broker can still lose it).
    """

    seqs: list[SeqRange] = Field(max_length=MAX_STORED_RANGES)


BODY_MODELS: dict[TopicKind, type[Body]] = {
    TopicKind.HELLO: HelloBody,
    TopicKind.STATE: StateBody,
    TopicKind.HEARTBEAT: HeartbeatBody,
    TopicKind.METRICS: MetricsBody,
    TopicKind.BENCH: BenchBody,
    TopicKind.CMD: CmdBody,
    TopicKind.ACK: AckBody,
    TopicKind.STORED: StoredBody,
}

BodyT = TypeVar("BodyT", bound=Body)


class Envelope(BaseModel, Generic[BodyT]):
    """The wrapper around every payload."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    schema_id: str = Field(alias="schema", pattern=r"^[a-z-]+/\d+$")
    device_id: DeviceId
    seq: int = Field(ge=0)
    sent_at: AwareDatetime
    body: BodyT

    @property
    def kind(self) -> TopicKind:
        """The topic kind named by ``schema``."""
        return TopicKind(self.schema_id.split("/", 1)[0])

    @property
    def version(self) -> int:
        """The schema version the sender wrote."""
        return int(self.schema_id.rsplit("/", 1)[1])


def schema_id(kind: TopicKind, version: int = SCHEMA_VERSION) -> str:
    """The ``schema`` value for a kind (at the current version unless told)."""
    if version not in SUPPORTED_VERSIONS:
        raise ValueError(f"schema version {version} is not one of {sorted(SUPPORTED_VERSIONS)}")
    return f"{kind.value}/{version}"


def make_envelope(
    device_id: str,
    seq: int,
    body: Body,
    *,
    sent_at: datetime | None = None,
    version: int = SCHEMA_VERSION,
) -> Envelope[Any]:
    """Wrap ``body`` for ``device_id``; the kind follows from the body type."""
    kind = next((k for k, model in BODY_MODELS.items() if isinstance(body, model)), None)
    if kind is None:
        raise TypeError(f"{type(body).__name__} is not a message body")
    return Envelope[Any](
        schema_id=schema_id(kind, version),
        device_id=device_id,
        seq=seq,
        sent_at=sent_at or datetime.now(UTC),
        body=body,
    )


def seq_ranges(seqs: Iterable[int]) -> list[SeqRange]:
    """Sorted seqs folded into inclusive ``(first, last)`` ranges: the ``stored`` body's form."""
    ranges: list[SeqRange] = []
    for seq in sorted(set(seqs)):
        if ranges and ranges[-1][1] == seq - 1:
            ranges[-1] = (ranges[-1][0], seq)
        else:
            ranges.append((seq, seq))
    return ranges


def encode(envelope: Envelope[Any]) -> bytes:
    """Serialise an envelope to the JSON wire format."""
    return envelope.model_dump_json(by_alias=True, exclude_none=True).encode()


class RejectReason(StrEnum):
    """Why a payload was refused; stable codes for dead-letter counters."""

    BAD_TOPIC = "bad_topic"
    OVERSIZED = "oversized"
    BAD_JSON = "bad_json"
    BAD_SCHEMA = "bad_schema"
    WRONG_KIND = "wrong_kind"
    UNSUPPORTED_VERSION = "unsupported_version"
    DEVICE_MISMATCH = "device_mismatch"


class MessageRejected(ValueError):
    """A payload that cannot be accepted, with a stable code and a readable reason."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


_ENVELOPE_ADAPTERS = {kind: TypeAdapter(Envelope[model]) for kind, model in BODY_MODELS.items()}  # type: ignore[valid-type]
_HEADER = TypeAdapter(dict[str, Any])


def parse_message(
    topic: str,
    payload: bytes,
    *,
    topics: Topics | None = None,
    authenticated_as: str | None = None,
) -> Envelope[Any]:
    """Validate a received payload against its topic; raise :class:`MessageRejected`.

    Checks, in order: topic grammar, size, JSON, schema kind and version, body
    fields, and that the topic's device id equals the envelope's (and the
    broker-authenticated user's, when known).
    """
    try:
        parsed = (topics or Topics()).parse(topic)
    except TopicError as exc:
        raise MessageRejected(RejectReason.BAD_TOPIC, str(exc)) from None
    if not parsed.kind.enveloped:
        raise MessageRejected(RejectReason.BAD_TOPIC, f"{parsed.kind.value} carries no envelope")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise MessageRejected(
            RejectReason.OVERSIZED, f"payload is {len(payload)} bytes, limit {MAX_PAYLOAD_BYTES}"
        )
    try:
        raw = _HEADER.validate_json(payload)
    except ValidationError as exc:
        raise MessageRejected(RejectReason.BAD_JSON, _first_error(exc)) from None
    _check_schema(raw.get("schema"), parsed.kind)
    try:
        envelope = _ENVELOPE_ADAPTERS[parsed.kind].validate_python(raw)
    except ValidationError as exc:
        raise MessageRejected(RejectReason.BAD_SCHEMA, _first_error(exc)) from None
    for claimed, source in ((parsed.device_id, "topic"), (authenticated_as, "credential")):
        if claimed is not None and claimed != envelope.device_id:
            raise MessageRejected(
                RejectReason.DEVICE_MISMATCH,
                f"envelope device_id {envelope.device_id!r} differs from {source} {claimed!r}",
            )
    return envelope


def _check_schema(schema: object, kind: TopicKind) -> None:
    if not isinstance(schema, str) or "/" not in schema:
        raise MessageRejected(
            RejectReason.BAD_SCHEMA, f"schema must be '<kind>/<version>', got {schema!r}"
        )
    name, _, version = schema.partition("/")
    if name != kind.value:
        raise MessageRejected(
            RejectReason.WRONG_KIND, f"schema {schema!r} sent on a {kind.value} topic"
        )
    if not version.isdigit() or int(version) not in SUPPORTED_VERSIONS:
        raise MessageRejected(
            RejectReason.UNSUPPORTED_VERSION,
            f"schema version {version[:8]!r}, this side reads {sorted(SUPPORTED_VERSIONS)}",
        )


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"]) or "payload"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}"
