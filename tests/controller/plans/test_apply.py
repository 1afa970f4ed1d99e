"""Applying a plan through a real Mosquitto: canary, next wave when healthy, rollback on error."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from controller import crud
from controller import models as db
from controller.core.db import session_scope
from controller.core.lease import Lease, LeaseLost
from controller.ingest.commands import CommandPublisher
from controller.ingest.service import IngestService
from controller.models import utcnow
from controller.planner.types import ProfilingSettings
from controller.plans.apply import PlanApplier, PlanError, RolloutConfig
from controller.plans.profiler import Profiler, ProfilingError
from controller.plans.service import draft_plan, plan_detail
from shared.messages import AckBody, AckStatus, AssignCommand, MetricsBody
from shared.topics import TopicKind, Topics
from tests.controller.devices import FakeDevice, wait_until
from tests.controller.plans.db_world import seed_world
from tests.support.broker import MosquittoBroker


class Listener:
    """A fake device that records the assign commands it receives."""

    def __init__(self, device_id: str, port: int) -> None:
        self.device = FakeDevice(device_id, port)
        self.commands: list[dict] = []
        self.device.client.on_message = lambda c, u, m: self.commands.append(
            json.loads(m.payload)["body"]["command"]
        )
        self.device.client.subscribe(Topics().device(device_id, TopicKind.CMD), qos=1)

    def ack(self, status: AckStatus, *, index: int = -1, reason: str | None = None) -> None:
        cid = self.commands[index]["command_id"]
        self.device.publish_body(AckBody(command_id=cid, status=status, reason=reason))


@pytest.fixture
def rig(
    sqlite_engine: Engine,
    mosquitto: MosquittoBroker,
    ingest_factory: Callable[..., IngestService],
    tiny_gguf_factory,
):
    seed_world(sqlite_engine, tiny_gguf_factory, current="m-small")
    service = ingest_factory(sqlite_engine, mosquitto, client_id="plan-ctl")
    devices = {d: Listener(d, mosquitto.port) for d in ("s1", "s2", "b1")}
    wait_until(lambda: False, 0.3)
    applier = PlanApplier(
        sqlite_engine,
        CommandPublisher(sqlite_engine, service.connection, topics=Topics()),
        model_url=lambda m: f"http://controller.test/models/{m}",
        config=RolloutConfig(timeout_s=60, require_metrics=True),
    )
    yield sqlite_engine, service, devices, applier
    for listener in devices.values():
        listener.device.close()


def _statuses(engine: Engine, plan_id: int) -> dict[str, str]:
    with Session(engine) as session:
        return {a["device_id"]: a["status"] for a in plan_detail(session, plan_id)["assignments"]}


def _move_small_box(engine: Engine) -> None:
    # Make the small class change too: both small devices run m-big, which cannot fit there.
    with Session(engine) as session:
        for d in ("s1", "s2"):
            row = session.get(db.Device, d)
            row.model_id, row.refine = "m-big", False
            session.add(row)
        session.commit()


def test_canary_then_next_wave_once_acked_and_healthy(rig) -> None:
    engine, service, devices, applier = rig
    _move_small_box(engine)
    plan_id = draft_plan(engine)
    assert applier.apply(plan_id, created_by="op") == "3 changes in 2 waves"
    canaries = [d for d in ("b1", "s1") if wait_until(lambda d=d: devices[d].commands, 5)]
    assert canaries == ["b1", "s1"] and not devices["s2"].commands  # one canary per class
    cmd = devices["b1"].commands[0]
    assert (cmd["type"], cmd["model_id"], cmd["refine"]) == ("assign", "m-big", True)
    assert cmd["url"] == "http://controller.test/models/m-big"
    for d in canaries:
        devices[d].ack(AckStatus.OK)
    assert wait_until(lambda: service.stats.stored >= 2, 5)
    assert applier.tick(plan_id) == "running"  # acked, but no serving metrics yet
    for d in canaries:
        devices[d].device.publish_body(MetricsBody(window_s=60, requests=5, errors=0))
    assert wait_until(lambda: service.stats.stored >= 4, 5)
    assert applier.tick(plan_id) == "running"
    assert wait_until(lambda: devices["s2"].commands, 5)  # the second wave went out
    devices["s2"].ack(AckStatus.OK)
    devices["s2"].device.publish_body(MetricsBody(window_s=60, requests=3, errors=0))
    assert wait_until(lambda: service.stats.stored >= 6, 5)
    assert applier.tick(plan_id) == "done"
    assert _statuses(engine, plan_id) == {"b1": "ok", "s1": "ok", "s2": "ok"}


def test_a_second_ticker_with_a_stale_view_repeats_no_command_and_fails_nothing(rig) -> None:
    """The loop, ``/advance`` and ``plan apply --wait`` may tick one plan at once."""
    engine, service, devices, applier = rig
    _move_small_box(engine)
    plan_id = draft_plan(engine)
    applier.apply(plan_id, created_by="op")
    assert wait_until(lambda: devices["b1"].commands and devices["s1"].commands, 5)
    for d in ("b1", "s1"):
        devices[d].ack(AckStatus.OK)
        devices[d].device.publish_body(MetricsBody(window_s=60, requests=5, errors=0))
    assert wait_until(lambda: service.stats.stored >= 4, 5)
    with Session(engine) as session:
        stale = dict(session.get(db.Plan, plan_id).params)  # what a second ticker read
    assert applier.tick(plan_id) == "running"  # the first ticker sends the second wave
    with Session(engine) as session:  # the second ticker saves its stale view back ...
        plan = session.get(db.Plan, plan_id)
        plan.params = stale
        session.add(plan)
        session.commit()
    other = PlanApplier(
        engine, applier.commands, model_url=applier.model_url, config=applier.config
    )
    assert other.tick(plan_id) == "running"  # ... and advances it again
    assert _statuses(engine, plan_id) == {"b1": "ok", "s1": "ok", "s2": "sent"}
    with Session(engine) as session:
        sent = session.exec(select(db.Command).where(db.Command.device_id == "s2")).all()
    assert [c.id for c in sent] == [f"p{plan_id}-as-s2"]
    assert wait_until(lambda: devices["s2"].commands, 5)
    wait_until(lambda: len(devices["s2"].commands) > 1, 0.5)
    assert len(devices["s2"].commands) == 1


def test_failing_canary_rolls_back_and_stops_the_rollout(rig) -> None:
    engine, service, devices, applier = rig
    _move_small_box(engine)
    plan_id = draft_plan(engine)
    applier.apply(plan_id)
    assert wait_until(lambda: devices["b1"].commands and devices["s1"].commands, 5)
    devices["b1"].ack(AckStatus.ERROR, reason="out of memory loading m-big")
    assert wait_until(lambda: service.stats.stored >= 1, 5)
    assert applier.tick(plan_id) == "rolled_back"
    assert wait_until(lambda: len(devices["b1"].commands) == 2, 5)
    back = devices["b1"].commands[1]
    assert (back["model_id"], back["refine"], back["command_id"]) == (
        "m-small",
        False,
        f"p{plan_id}-rb-b1",
    )
    wait_until(lambda: False, 0.5)
    assert not devices["s2"].commands  # the next wave is never sent
    with Session(engine) as session:
        plan = session.get(db.Plan, plan_id)
        assert plan.status == "failed"
        assert "b1: command error: out of memory loading m-big" in plan.reasons[-1]
    assert applier.tick(plan_id) == "rolled_back"
    # The canary that failed says so; its wave's other device was told to go back.
    assert _statuses(engine, plan_id) == {"b1": "failed", "s1": "rolled_back", "s2": "change"}


class LoopLooksWhileSending:
    """Sends like the real publisher, but lets the planner loop tick the plan first.

    In ``controller run`` the API thread applies a plan while the loop's thread
    ticks every rollout: a tick can land between two commands of one wave.
    """

    def __init__(self, inner: CommandPublisher, look: Callable[[], str]) -> None:
        self.inner, self.look = inner, look
        self.seen: list[str] = []

    def send(self, **kwargs: Any) -> db.Command:
        self.seen.append(self.look())
        return self.inner.send(**kwargs)


def test_a_tick_while_a_wave_is_being_sent_sends_each_command_once(rig) -> None:
    engine, _, devices, loop_applier = rig
    _move_small_box(engine)
    plan_id = draft_plan(engine)
    publisher = LoopLooksWhileSending(loop_applier.commands, lambda: loop_applier.tick(plan_id))
    api_applier = PlanApplier(
        engine, publisher, model_url=loop_applier.model_url, config=loop_applier.config
    )
    assert api_applier.apply(plan_id) == "3 changes in 2 waves"
    # The tick inside the first send sent the wave itself; the API found both commands.
    assert publisher.seen == ["running"]
    assert _statuses(engine, plan_id) == {"b1": "sent", "s1": "sent", "s2": "change"}
    assert wait_until(lambda: devices["b1"].commands and devices["s1"].commands, 5)
    wait_until(lambda: False, 0.5)
    assert [c["command_id"] for c in devices["b1"].commands] == [f"p{plan_id}-as-b1"]
    assert [c["command_id"] for c in devices["s1"].commands] == [f"p{plan_id}-as-s1"]


class BreaksOffSending:
    """A publisher that raises on the first send, as a controller stopping mid-wave would."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def send(self, **kwargs: Any) -> db.Command:
        raise self.error


def _apply_broken_off(engine: Engine, applier: PlanApplier, error: BaseException) -> int:
    plan_id = draft_plan(engine)
    broken = PlanApplier(
        engine, BreaksOffSending(error), model_url=applier.model_url, config=applier.config
    )
    with pytest.raises(type(error)):
        broken.apply(plan_id)
    return plan_id


def test_a_wave_cut_off_mid_send_is_sent_by_the_next_tick(rig) -> None:
    """A controller (or replica) that stopped mid-wave: whoever ticks next finishes sending."""
    engine, _, devices, applier = rig
    plan_id = _apply_broken_off(engine, applier, SystemExit(0))
    assert applier.tick(plan_id) == "running"
    assert _statuses(engine, plan_id)["b1"] == "sent"
    assert wait_until(lambda: devices["b1"].commands, 5)
    assert applier.tick(plan_id) == "running"  # sent once: the second tick only waits
    wait_until(lambda: False, 0.5)
    assert [c["command_id"] for c in devices["b1"].commands] == [f"p{plan_id}-as-b1"]


def test_a_command_recorded_by_a_sender_that_died_is_published_once(rig) -> None:
    """Recorded (pending) but never published: after RESEND_AFTER_S the next tick publishes it."""
    engine, _, devices, applier = rig
    plan_id = _apply_broken_off(engine, applier, SystemExit(0))
    command_id = f"p{plan_id}-as-b1"
    with session_scope(engine) as session:
        crud.create_command(
            session, device_id="b1", plan_id=plan_id,
            command=AssignCommand(command_id=command_id, model_id="m-big", sha256="0" * 64,
                                  url="http://x/m-big", size_bytes=1),
        )  # fmt: skip
        session.get(db.Command, command_id).created_at = utcnow() - timedelta(seconds=10)
    assert applier.tick(plan_id) == "running"
    assert wait_until(lambda: devices["b1"].commands, 5)
    assert [c["command_id"] for c in devices["b1"].commands] == [command_id]
    with Session(engine) as session:
        assert session.get(db.Command, command_id).status == "sent"


def test_a_replica_that_lost_the_lease_neither_applies_nor_sends(rig) -> None:
    engine, _, devices, applier = rig
    old, new = (Lease(engine, "planner", name, ttl_s=60) for name in ("old", "new"))
    assert old.renew()
    with session_scope(engine) as session:
        session.execute(db.Lease.__table__.update().values(expires_epoch_s=0.0))
    assert new.renew()
    fenced = PlanApplier(
        engine, applier.commands, model_url=applier.model_url, config=applier.config,
        fence=old.fence,
    )  # fmt: skip
    plan_id = draft_plan(engine)
    with pytest.raises(LeaseLost):
        fenced.apply(plan_id)
    with Session(engine) as session:
        assert session.get(db.Plan, plan_id).status == "draft"
    leader = PlanApplier(
        engine, applier.commands, model_url=applier.model_url, config=applier.config,
        fence=new.fence,
    )  # fmt: skip
    leader.apply(plan_id)
    assert wait_until(lambda: devices["b1"].commands, 5)
    with pytest.raises(LeaseLost):
        fenced.tick(plan_id, now=utcnow() + timedelta(seconds=61))  # would roll back
    with Session(engine) as session:
        assert session.get(db.Plan, plan_id).params["rollout"]["state"] == "running"


def test_a_command_that_cannot_be_sent_fails_its_wave_at_once(rig) -> None:
    engine, _, _, applier = rig
    plan_id = _apply_broken_off(engine, applier, LookupError("device b1 is not enrolled"))
    assert applier.tick(plan_id) == "rolled_back"
    with Session(engine) as session:
        assert "b1: command publish_failed" in session.get(db.Plan, plan_id).reasons[-1]


def test_silent_canary_times_out_and_rolls_back(rig) -> None:
    engine, service, devices, applier = rig
    plan_id = draft_plan(engine)
    applier.apply(plan_id)
    assert wait_until(lambda: devices["b1"].commands, 5)
    assert applier.tick(plan_id) == "running"
    later = utcnow() + timedelta(seconds=61)
    assert applier.tick(plan_id, now=later) == "rolled_back"
    with Session(engine) as session:
        assert "no ok ack and healthy metrics after" in session.get(db.Plan, plan_id).reasons[-1]


def test_only_a_draft_can_be_applied(rig) -> None:
    engine, _, _, applier = rig
    plan_id = draft_plan(engine)
    applier.apply(plan_id)
    with pytest.raises(PlanError, match="not a draft"):
        applier.apply(plan_id)


def _add_unjudged_model(engine: Engine, applier: PlanApplier) -> None:
    path = applier._model("m-small").path
    with Session(engine) as session:  # a model nobody has judged yet: optimistic at parity
        session.add(
            db.Model(
                id="m-new",
                name="m-new",
                sha256="c" * 64,
                size_bytes=1000,
                path=path,
                filename="m-new.gguf",
            )
        )
        session.commit()


def test_profiling_sends_bench_commands_for_unmeasured_pairs_that_could_win(rig) -> None:
    engine, service, devices, applier = rig
    profiler = Profiler(engine, applier.commands, model_url=applier.model_url)
    assert profiler.run() == []  # m-small cannot beat m-big on big-box
    _add_unjudged_model(engine, applier)
    sent = profiler.run(limit=5)
    assert sorted((s.device_id, s.model_id, s.status) for s in sent) == [
        ("b1", "m-new", "sent"),
        ("s1", "m-new", "sent"),
    ]
    assert all("never judged: reference parity" in s.reason for s in sent)
    assert wait_until(lambda: devices["b1"].commands and devices["s1"].commands, 5)
    cmd = devices["s1"].commands[0]
    assert cmd["type"] == "bench" and cmd["model_ids"] == ["m-new"]
    assert cmd["sources"] == [
        {
            "model_id": "m-new",
            "sha256": "c" * 64,
            "url": "http://controller.test/models/m-new",
            "size_bytes": 1000,
        }
    ]
    assert profiler.run() == []  # both pairs are being profiled; s2 would only repeat one


def test_profiling_benches_carry_the_fleet_judge_and_reference_where_they_fit(rig) -> None:
    engine, service, devices, applier = rig
    _add_unjudged_model(engine, applier)
    grading = ProfilingSettings(
        judge_model_id="m-big", reference_model_id="m-big", questions_per_pair=2
    )
    profiler = Profiler(engine, applier.commands, model_url=applier.model_url, profiling=grading)
    sent = {s.device_id: s for s in profiler.run()}
    assert (sent["b1"].judge_model_id, sent["b1"].reference_model_id) == ("m-big", "m-big")
    assert sent["s1"].judge_model_id is None  # m-big cannot load in small-box's 75 MB
    assert "speed only: the judge m-big needs" in sent["s1"].reason
    assert wait_until(lambda: devices["b1"].commands, 5)
    cmd = devices["b1"].commands[0]
    assert cmd["max_questions"] == 2 and cmd["reference_model_id"] == "m-big"
    assert [s["model_id"] for s in cmd["sources"]] == ["m-new", "m-big"]
    missing = ProfilingSettings(judge_model_id="nope", reference_model_id="m-big")
    with pytest.raises(ProfilingError, match="judge_model_id 'nope' is not in the model registry"):
        Profiler(engine, applier.commands, model_url=applier.model_url, profiling=missing).run()


def test_profiling_benches_name_the_configured_suite_pinned_by_sha256(rig) -> None:
    from shared.suites.builtin import builtin_source

    engine, service, devices, applier = rig
    _add_unjudged_model(engine, applier)
    on_choices = ProfilingSettings(suite_id="everyday-choice", questions_per_pair=2)
    Profiler(engine, applier.commands, model_url=applier.model_url, profiling=on_choices).run()
    assert wait_until(lambda: devices["b1"].commands, 5)
    suite = devices["b1"].commands[0]["suite"]
    assert suite == builtin_source("everyday-choice").model_dump(exclude_none=True)
    unknown = ProfilingSettings(suite_id="no-such-suite")
    with pytest.raises(ProfilingError, match="suite 'no-such-suite' is neither uploaded"):
        Profiler(engine, applier.commands, model_url=applier.model_url, profiling=unknown).run()


def test_the_planner_loop_advances_a_running_rollout(rig) -> None:
    from controller.plans.loop import PlannerLoop

    engine, service, devices, applier = rig
    _move_small_box(engine)
    plan_id = draft_plan(engine)
    applier.apply(plan_id)
    assert wait_until(lambda: devices["b1"].commands and devices["s1"].commands, 5)
    for d in ("b1", "s1"):
        devices[d].ack(AckStatus.OK)
        devices[d].device.publish_body(MetricsBody(window_s=60, requests=1, errors=0))
    assert wait_until(lambda: service.stats.stored >= 4, 5)
    PlannerLoop(engine, applier).step(now=0)
    assert wait_until(lambda: devices["s2"].commands, 5)  # the loop sent the second wave


def test_the_planner_loop_profiles_only_when_given_a_profiler_and_then_per_interval(
    rig, caplog
) -> None:
    from controller.plans.loop import PlannerLoop

    engine, service, devices, applier = rig
    _add_unjudged_model(engine, applier)

    def benches() -> list[db.Command]:
        with Session(engine) as session:
            return list(session.exec(select(db.Command).where(db.Command.type == "bench")).all())

    PlannerLoop(engine, applier).step(now=0)
    assert benches() == []  # auto-profiling is off by default
    profiler = Profiler(engine, applier.commands, model_url=applier.model_url)
    loop = PlannerLoop(engine, applier, profiler=profiler, profile_interval_s=60)
    loop.step(now=0)
    first = benches()
    assert {(c.device_id, c.created_by) for c in first} == {
        ("b1", "planner-loop"),
        ("s1", "planner-loop"),
    }
    for d in ("b1", "s1"):  # both benches end (an error: m-new never gets measured)
        assert wait_until(lambda d=d: devices[d].commands, 5)
        devices[d].ack(AckStatus.ERROR, reason="no such model")
    assert wait_until(lambda: all(c.status == "error" for c in benches()), 5)
    loop.step(now=30)
    assert len(benches()) == 2  # the next round waits for the interval
    loop.step(now=61)
    assert len(benches()) == 4  # the failed pairs are tried again a round later
    broken = Profiler(
        engine,
        applier.commands,
        model_url=applier.model_url,
        profiling=ProfilingSettings(judge_model_id="gone", reference_model_id="m-big"),
    )
    PlannerLoop(engine, applier, profiler=broken).step(now=0)  # logged, not raised
    assert "profiling round skipped: judge_model_id 'gone'" in caplog.text
