"""Commands over a real broker: assign (ok, wrong sha256, over budget), duplicates, others.

The agent runs in-process with its chat API on; the previous model must keep
answering there whenever an assign is refused.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from agent.config import load_settings
from agent.daemon import Agent
from shared.gguf_info import estimate_memory, read_gguf_info
from shared.messages import (
    AssignCommand,
    BenchCommand,
    CmdBody,
    IdentifyCommand,
    ReloadConfigCommand,
    encode,
    make_envelope,
    parse_message,
)
from tests.agent.command_harness import TOPICS, Harness
from tests.agent.daemon_support import FileServer, publish_model, wait_until, write_config

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def big_gguf(tiny_gguf_factory) -> Path:
    return tiny_gguf_factory("big-llama", n_embd=256, n_layers=8, n_heads=4, n_kv_heads=4, n_ff=512)


@pytest.fixture
def harness(broker, tmp_path: Path, tiny_gguf: Path, request):
    overrides = getattr(request, "param", {})
    h = Harness(broker, tmp_path, tiny_gguf, **overrides)
    yield h
    h.close()


def _assign(registry: FileServer, path: Path, model_id: str, *, sha: str | None = None):
    source = publish_model(registry, path, model_id, sha=sha)
    return AssignCommand(command_id=f"c-{uuid.uuid4().hex[:8]}", **source.model_dump())


def test_assign_downloads_verifies_and_swaps_models(harness, registry, tiny_gguf_factory):
    other = tiny_gguf_factory("other-llama", seed=7)
    command = _assign(registry, other, "other")
    harness.send(command)
    ack = harness.final_ack(command.command_id)
    assert ack["status"] == "ok", ack
    assert ack["detail"]["bytes_transferred"] == other.stat().st_size
    assert [a["status"] for a in harness.acks(command.command_id)] == ["accepted", "ok"]
    assert harness.chat().json()["model"] == "other"
    assert wait_until(lambda: harness.recorder.of_kind("state")[-1]["body"]["model_id"] == "other")
    # a redelivered command id is acknowledged again, not run again
    requests_before = len(registry.requests)
    harness.send(command)
    assert wait_until(lambda: len(harness.acks(command.command_id)) == 3)
    again = harness.acks(command.command_id)[-1]
    assert again["status"] == "ok" and again["detail"]["duplicate"] is True
    assert len(registry.requests) == requests_before


def test_assign_with_wrong_sha256_is_refused_and_old_model_keeps_answering(
    harness, registry, tiny_gguf_factory
):
    other = tiny_gguf_factory("corrupt-llama", seed=3)
    command = _assign(registry, other, "corrupt", sha="f" * 64)
    harness.send(command)
    ack = harness.final_ack(command.command_id)
    assert ack["status"] == "error" and "sha256 mismatch" in ack["reason"]
    reply = harness.chat()
    assert reply.status_code == 200 and reply.json()["model"] == "tiny-llama.q4_0"
    assert reply.json()["usage"]["completion_tokens"] == 4


def test_assign_over_memory_budget_is_refused_and_old_model_keeps_answering(
    broker, tmp_path, tiny_gguf, big_gguf, registry
):
    tiny_mb = estimate_memory(read_gguf_info(tiny_gguf), n_ctx=2048).total_mb
    big_mb = estimate_memory(read_gguf_info(big_gguf), n_ctx=2048).total_mb
    assert big_mb - tiny_mb > 10
    budget = int((tiny_mb + big_mb) / 2)
    harness = Harness(broker, tmp_path, tiny_gguf, profile_overrides={"memory_budget_mb": budget})
    try:
        command = _assign(registry, big_gguf, "big")
        harness.send(command)
        ack = harness.final_ack(command.command_id)
        assert ack["status"] == "error"
        assert f"memory budget is {budget} MB" in ack["reason"]
        reply = harness.chat()
        assert reply.status_code == 200 and reply.json()["model"] == "tiny-llama.q4_0"
        assert harness.agent.host.serving.model_id == "tiny-llama.q4_0"
    finally:
        harness.close()


def test_identify_and_reload_config_are_acknowledged(broker, tmp_path, tiny_gguf):
    harness = Harness(broker, tmp_path, tiny_gguf, profile_overrides={"gpio": {"status_led": 17}})
    try:
        harness.send(IdentifyCommand(command_id="id-1", seconds=0.5))
        assert harness.final_ack("id-1")["status"] == "ok"
        harness.config["profile_overrides"]["disk_budget_mb"] = 123
        write_config(tmp_path, harness.config)
        harness.send(ReloadConfigCommand(command_id="rc-1"))
        assert harness.final_ack("rc-1")["status"] == "ok"
        assert harness.agent.store.budget_bytes == 123_000_000
        (tmp_path / "agent.yaml").write_text("device_id: [broken\n")
        harness.send(ReloadConfigCommand(command_id="rc-2"))
        ack = harness.final_ack("rc-2")
        assert ack["status"] == "error" and "not valid YAML" in ack["reason"]
        assert harness.agent.store.budget_bytes == 123_000_000
    finally:
        harness.close()


def test_identify_without_a_led_is_an_error_ack_and_bad_commands_do_not_crash(harness):
    harness.recorder.publish(TOPICS.device(harness.device, "cmd"), b"{not json")
    harness.send(IdentifyCommand(command_id="id-2"))
    ack = harness.final_ack("id-2")
    assert ack["status"] == "error" and "no status LED" in ack["reason"]
    assert harness.agent.link.rejected_commands == 1


def test_bench_command_publishes_a_valid_bench_result(harness):
    harness.send(BenchCommand(command_id="b-1", max_questions=1, refine=True))
    ack = harness.final_ack("b-1", timeout=120)
    assert ack["status"] == "ok", ack
    assert wait_until(lambda: harness.recorder.of_kind("bench"))
    raw = harness.recorder.of_kind("bench")[-1]
    bench = parse_message(TOPICS.device(harness.device, "bench"), json.dumps(raw).encode())
    assert bench.body.command_id == "b-1"
    assert bench.body.run_id in ack["detail"]["run_ids"]
    assert bench.body.model.model_id == "tiny-llama.q4_0"
    assert bench.body.decode_tok_s.mean > 0
    assert {q.refined for q in bench.body.questions} == {False, True}
    assert harness.chat().status_code == 200  # serving resumes after the benchmark


def test_bench_of_an_unknown_model_is_refused(harness):
    harness.send(BenchCommand(command_id="b-2", model_ids=["nope"]))
    ack = harness.final_ack("b-2")
    assert ack["status"] == "error"
    assert ack["reason"] == (
        "model 'nope' is not in the local store and the command gives no source for it"
    )


def test_long_press_benchmarks_the_serving_model(broker, tmp_path, tiny_gguf):
    harness = Harness(
        broker, tmp_path, tiny_gguf, profile_overrides={"gpio": {"status_led": 17, "button": 27}}
    )
    try:
        button = harness.agent.light.factory.pin(27)
        button.drive_low()
        assert wait_until(lambda: harness.recorder.of_kind("bench"), 120)
        button.drive_high()
        body = harness.recorder.of_kind("bench")[-1]["body"]
        assert body["command_id"].startswith("button-")
    finally:
        harness.close()


def test_chat_requests_feed_the_metrics_report(broker, tmp_path, tiny_gguf):
    harness = Harness(broker, tmp_path, tiny_gguf, metrics_interval_s=0.5)
    try:
        assert harness.chat().status_code == 200
        assert harness.chat().status_code == 200

        def served() -> list[dict]:
            return [
                m["body"]
                for m in harness.recorder.of_kind("metrics")
                if m["body"].get("requests", 0) > 0
            ]

        assert wait_until(lambda: sum(b["requests"] for b in served()) == 2, 20)
        body = served()[0]
        assert body["model_id"] == "tiny-llama.q4_0"
        assert body["generated_tokens"] >= 4 and body["latency_ms_p95"] > 0
    finally:
        harness.close()


def test_invalid_command_with_a_readable_id_gets_an_error_ack(harness):
    payload = encode(
        make_envelope(harness.device, 1, CmdBody(command=IdentifyCommand(command_id="bad-1")))
    ).replace(b'"identify"', b'"self-destruct"')
    harness.recorder.publish(TOPICS.device(harness.device, "cmd"), payload)
    ack = harness.final_ack("bad-1")
    assert ack["status"] == "error" and ack["reason"].startswith("invalid command: bad_schema")
    assert harness.chat().status_code == 200


def test_assign_of_a_file_that_is_not_a_gguf_is_refused(harness, registry, tmp_path):
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a model at all" * 100)
    command = _assign(registry, junk, "junk")
    harness.send(command)
    ack = harness.final_ack(command.command_id)
    assert ack["status"] == "error" and "cannot serve junk" in ack["reason"]
    assert harness.chat().json()["model"] == "tiny-llama.q4_0"


def test_assign_with_refine_makes_refinement_the_default(harness, registry, tiny_gguf_factory):
    command = _assign(registry, tiny_gguf_factory("refiner", seed=11), "refiner")
    command = command.model_copy(update={"refine": True})
    harness.send(command)
    assert harness.final_ack(command.command_id)["status"] == "ok"
    reply = harness.chat().json()
    assert reply["model"] == "refiner" and reply["edgefleet"]["refined"] is True
    assert wait_until(lambda: harness.recorder.of_kind("state")[-1]["body"]["refine"] is True)
    assert harness.recorder.of_kind("state")[-1]["body"]["strategy"] == "refine:1"


def test_assign_with_a_strategy_serves_with_it(harness, registry, tiny_gguf_factory):
    command = _assign(registry, tiny_gguf_factory("voter", seed=12), "voter")
    command = command.model_copy(update={"strategy": "vote:3"})
    harness.send(command)
    assert harness.final_ack(command.command_id)["status"] == "ok"
    ext = harness.chat().json()["edgefleet"]
    assert ext["strategy"] == "vote:3" and ext["stages"] == 3
    assert wait_until(lambda: harness.recorder.of_kind("state")[-1]["body"]["strategy"] == "vote:3")


def test_assign_of_a_file_bigger_than_the_memory_budget_is_refused_before_download(
    broker, tmp_path, tiny_gguf, registry
):
    harness = Harness(broker, tmp_path, tiny_gguf, profile_overrides={"memory_budget_mb": 60})
    try:
        big = tmp_path / "huge.gguf"
        big.write_bytes(b"\0" * 10)
        command = _assign(registry, big, "huge").model_copy(update={"size_bytes": 61_000_000})
        harness.send(command)
        ack = harness.final_ack(command.command_id)
        assert ack["status"] == "error" and "memory budget is 60 MB" in ack["reason"]
        assert registry.requests == []
        assert harness.chat().json()["model"] == "tiny-llama.q4_0"
    finally:
        harness.close()


def test_rollback_to_the_previous_model_needs_no_download(harness, registry, tiny_gguf_factory):
    first = _assign(registry, tiny_gguf_factory("first", seed=21), "first")
    second = _assign(registry, tiny_gguf_factory("second", seed=22), "second")
    for command in (first, second):
        harness.send(command)
        assert harness.final_ack(command.command_id)["status"] == "ok"
    assert first.sha256 in harness.agent.assigner.protected()  # the rollback file is kept
    requests = len(registry.requests)
    back = first.model_copy(update={"command_id": "rollback-1"})
    harness.send(back)
    ack = harness.final_ack("rollback-1")
    assert ack["status"] == "ok" and ack["detail"]["cached"] is True
    assert ack["detail"]["bytes_transferred"] == 0 and len(registry.requests) == requests
    assert harness.chat().json()["model"] == "first"


def test_a_command_cut_off_by_an_agent_restart_gets_an_error_ack(broker, tmp_path, tiny_gguf):
    """Finding 9: a bench interrupted by a restart stayed "accepted" on the controller."""
    harness = Harness(broker, tmp_path, tiny_gguf)
    try:
        # what a run killed mid-bench leaves: the command accepted, never finished
        harness.agent.outbox.record_command("b-cut", "accepted", None, {"type": "bench"})
        harness.agent.stop()
        restarted = Agent(load_settings(harness.config_path), config_path=harness.config_path)
        harness.agent = restarted
        restarted.start()
        ack = harness.final_ack("b-cut", timeout=30)
        assert ack["status"] == "error" and "restart" in ack["reason"]
        assert ack["detail"] == {"type": "bench"}
        assert restarted.outbox.command("b-cut").status == "error"
    finally:
        harness.close()
