"""Commands to devices (bench, assign, identify; one device or a whole class) and their acks."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field, model_validator
from sqlmodel import Session, col, select

from controller import crud
from controller.api.deps import OperatorDep, SenderDep, SessionDep, StateDep
from controller.api.errors import not_found
from controller.api.pagination import Page, PageDep, paginate
from controller.models import Command, CommandAck, CommandPublic, Device
from controller.registry.sources import registry_sources
from controller.registry.suites import suite_source
from shared.messages import (
    AssignCommand,
    BenchCommand,
    Category,
    DeviceId,
    IdentifyCommand,
    SuiteSource,
)
from shared.profiles import ClassName
from shared.strategies import REFINE_1, Strategy, StrategyName

router = APIRouter(tags=["commands"])


class BenchParams(BaseModel):
    """Benchmark models; the device downloads those it lacks from this registry."""

    type: Literal["bench"] = "bench"
    model_ids: list[Annotated[str, Field(max_length=128)]] = Field(default_factory=list)
    categories: list[Category] = Field(default_factory=list)
    judge_model_id: str | None = Field(None, max_length=128)
    reference_model_id: str | None = Field(
        None,
        max_length=128,
        description="model whose judged answers are q = 1 (needs judge_model_id); "
        "with both, results carry q(m, k)",
    )
    refine: bool = True
    strategies: list[StrategyName] = Field(
        default_factory=list,
        max_length=8,
        description="strategies to bench beside direct, e.g. refine:1, verify-refine, vote:5; "
        "empty: by refine",
    )
    max_questions: int | None = Field(None, ge=1, le=10_000)
    suite_id: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$",
        description="an uploaded or built-in suite; none: the built-in nine-category set",
    )

    @model_validator(mode="after")
    def _reference_needs_judge(self) -> BenchParams:
        if self.reference_model_id and not self.judge_model_id:
            raise ValueError("reference_model_id needs judge_model_id to score its answers")
        return self


class AssignParams(BaseModel):
    """Serve a registry model (the device downloads it from this controller)."""

    type: Literal["assign"] = "assign"
    model_id: str = Field(max_length=128)
    refine: bool = False
    strategy: StrategyName | None = Field(
        None, description="the strategy to serve with (direct, refine:K, verify-refine, vote:K)"
    )
    n_ctx: int | None = Field(None, ge=64, le=1_048_576)


class IdentifyParams(BaseModel):
    """Blink the status LED."""

    type: Literal["identify"] = "identify"
    seconds: float = Field(10, gt=0, le=600)


class CommandRequest(BaseModel):
    """A command for one device or for every device of a class."""

    device_id: DeviceId | None = None
    device_class: ClassName | None = None
    command: Annotated[BenchParams | AssignParams | IdentifyParams, Field(discriminator="type")]

    @model_validator(mode="after")
    def _one_target(self) -> CommandRequest:
        if (self.device_id is None) == (self.device_class is None):
            raise ValueError("give exactly one of device_id or device_class")
        return self


class SendFailure(BaseModel):
    """A device the command could not be recorded for."""

    device_id: str
    reason: str


class CommandsSent(BaseModel):
    """What was sent (status ``sent`` or ``publish_failed``) and what was refused."""

    commands: list[CommandPublic]
    failed: list[SendFailure]


class AckPublic(BaseModel):
    """One ack message from a device."""

    command_id: str
    device_id: str
    seq: int
    status: str
    reason: str | None
    detail: dict[str, Any]
    sent_at: datetime
    received_at: datetime


class CommandDetail(CommandPublic):
    """A command and every ack it received."""

    acks: list[AckPublic]


def _targets(session: Session, request: CommandRequest) -> list[str]:
    if request.device_id is not None:
        if session.get(Device, request.device_id) is None:
            raise not_found(f"device {request.device_id!r}")
        return [request.device_id]
    query = select(Device.id).where(col(Device.device_class) == request.device_class)
    ids = list(session.exec(query.order_by(col(Device.id))).all())
    if not ids:
        raise not_found(f"devices of class {request.device_class!r}")
    return ids


def _model_url(state: StateDep, http: Request, model_id: str) -> str:
    base = state.settings.public_url or str(http.base_url)
    return f"{base.rstrip('/')}/api/v1/models/{model_id}/file"


def _suite_url(state: StateDep, http: Request, suite_id: str) -> str:
    base = state.settings.public_url or str(http.base_url)
    return f"{base.rstrip('/')}/api/v1/suites/{suite_id}/file"


def _bench_suite(
    session: Session, params: BenchParams, url_for: Callable[[str], str]
) -> SuiteSource | None:
    if params.suite_id is None:
        return None
    try:
        return suite_source(session, params.suite_id, url_for(params.suite_id))
    except LookupError as exc:
        raise not_found(f"suite {params.suite_id!r}") from exc


def _factory(
    session: Session,
    params: BaseModel,
    url_for: Callable[[str], str],
    suite_url_for: Callable[[str], str],
) -> Any:
    """A callable making one command (with a fresh command id) per target device."""
    if isinstance(params, AssignParams):
        found = registry_sources(session, [params.model_id], url_for)
        if not found:
            raise not_found(f"model {params.model_id!r}")
        strategy = params.strategy or Strategy.from_refine(params.refine).name
        fields = {
            **found[0].model_dump(),
            "refine": strategy == REFINE_1.name,  # all an agent from before strategies reads
            "strategy": strategy,
            "n_ctx": params.n_ctx,
        }
        return lambda: AssignCommand(command_id=uuid.uuid4().hex, **fields)
    if isinstance(params, BenchParams):
        bench = BenchCommand(
            command_id="template",
            suite=_bench_suite(session, params, suite_url_for),
            **params.model_dump(exclude={"type", "suite_id"}),
        )
        sources = registry_sources(session, bench.named_model_ids(), url_for)
        update = {"sources": sources}
        return lambda: bench.model_copy(update={**update, "command_id": uuid.uuid4().hex})
    seconds = params.seconds if isinstance(params, IdentifyParams) else 10.0
    return lambda: IdentifyCommand(command_id=uuid.uuid4().hex, seconds=seconds)


@router.post("/commands", response_model=CommandsSent, status_code=202)
def send_command(
    body: CommandRequest,
    http: Request,
    session: SessionDep,
    state: StateDep,
    sender: SenderDep,
    caller: OperatorDep,
) -> CommandsSent:
    """Send bench, assign or identify to one device or every device of a class."""
    targets = _targets(session, body)
    make = _factory(
        session,
        body.command,
        lambda model_id: _model_url(state, http, model_id),
        lambda suite_id: _suite_url(state, http, suite_id),
    )
    sent: list[CommandPublic] = []
    failed: list[SendFailure] = []
    for device_id in targets:
        try:
            row = sender.send(device_id=device_id, command=make(), created_by=caller.name)
        except (LookupError, ValueError) as exc:
            failed.append(SendFailure(device_id=device_id, reason=str(exc)))
            continue
        sent.append(CommandPublic.model_validate(row, from_attributes=True))
    return CommandsSent(commands=sent, failed=failed)


@router.get("/commands", response_model=Page[CommandPublic])
def list_commands(
    session: SessionDep,
    page: PageDep,
    device_id: Annotated[str | None, Query(max_length=63)] = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
    type: Annotated[str | None, Query(max_length=32)] = None,
) -> Page[Any]:
    """Commands, newest first, filtered by device, status or type."""
    stmt = crud.commands_query(device_id=device_id, status=status, type=type)
    rows, total = paginate(session, stmt, page)
    return Page(items=rows, total=total, limit=page.limit, offset=page.offset)


@router.get("/commands/{command_id}", response_model=CommandDetail)
def get_command(command_id: str, session: SessionDep) -> CommandDetail:
    """One command with the acks the device sent for it."""
    row = session.get(Command, command_id)
    if row is None:
        raise not_found(f"command {command_id!r}")
    acks = session.exec(
        select(CommandAck)
        .where(col(CommandAck.command_id) == command_id)
        .order_by(col(CommandAck.received_at))
    ).all()
    return CommandDetail.model_validate(
        {**row.model_dump(), "acks": [a.model_dump() for a in acks]}
    )


@router.get("/acks", response_model=Page[AckPublic])
def list_acks(
    session: SessionDep,
    page: PageDep,
    command_id: Annotated[str | None, Query(max_length=64)] = None,
    device_id: Annotated[str | None, Query(max_length=63)] = None,
) -> Page[Any]:
    """Acks as received (including ones for unknown commands), newest first."""
    stmt = select(CommandAck).order_by(col(CommandAck.id).desc())
    if command_id is not None:
        stmt = stmt.where(col(CommandAck.command_id) == command_id)
    if device_id is not None:
        stmt = stmt.where(col(CommandAck.device_id) == device_id)
    rows, total = paginate(session, stmt, page)
    return Page(items=rows, total=total, limit=page.limit, offset=page.offset)
