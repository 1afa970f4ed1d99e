"""Bench commands naming models the device lacks: fetched from the registry, then benchmarked.

Real broker, the agent in-process, model files over real HTTP (Range resume,
sha256), real llama.cpp. A random-weight judge never rates (its digit mass is
below ``MIN_DIGIT_MASS``), so the quality test grades with the real Gemma-3-270M.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from shared.messages import BenchBody, BenchCommand, parse_message
from tests.agent.command_harness import TOPICS, Harness
from tests.agent.daemon_support import publish_model, wait_until

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def harness(broker, tmp_path: Path, tiny_gguf: Path):
    h = Harness(broker, tmp_path, tiny_gguf)
    yield h
    h.close()


def _bench(**fields) -> BenchCommand:
    return BenchCommand(
        command_id=f"b-{uuid.uuid4().hex[:8]}", max_questions=1, refine=False, **fields
    )


def _results(harness: Harness, command_id: str) -> list[BenchBody]:
    topic = TOPICS.device(harness.device, "bench")
    return [
        parse_message(topic, json.dumps(raw).encode()).body
        for raw in harness.recorder.of_kind("bench")
        if raw["body"]["command_id"] == command_id
    ]


def _cached(harness: Harness) -> set[str]:
    hellos = harness.recorder.of_kind("hello")
    return {m["model_id"] for m in hellos[-1]["body"]["cached_models"]} if hellos else set()


def test_bench_downloads_candidate_judge_and_reference_then_reuses_them(
    harness, registry, tiny_gguf_factory
) -> None:
    paths = {name: tiny_gguf_factory(f"fetch-{name}", seed=i) for i, name in enumerate("cjr")}
    sources = [publish_model(registry, path, name) for name, path in paths.items()]
    registry.cut_after[paths["c"].name] = 30_000  # the first transfer breaks off
    command = _bench(model_ids=["c"], judge_model_id="j", reference_model_id="r", sources=sources)
    harness.send(command)
    ack = harness.final_ack(command.command_id, timeout=180)
    assert ack["status"] == "ok", ack
    assert (paths["c"].name, "bytes=30000-") in registry.requests  # resumed, not restarted
    (body,) = _results(harness, command.command_id)
    refs = (body.model, body.judge, body.reference)
    assert [(r.model_id, r.sha256) for r in refs] == [(s.model_id, s.sha256) for s in sources]
    assert [q.refined for q in body.questions] == [False]
    states = [m["body"]["activity"] for m in harness.recorder.of_kind("state")]
    assert "downloading" in states and states[-1] == "idle"
    assert {"c", "j", "r"} <= {m.model_id for m in harness.agent.store.models()}
    assert wait_until(lambda: {"c", "j", "r"} <= _cached(harness))  # the hello says so
    requests = len(registry.requests)
    again = command.model_copy(update={"command_id": "b-again"})
    harness.send(again)
    assert harness.final_ack("b-again", timeout=180)["status"] == "ok"
    assert len(registry.requests) == requests  # everything came from the store


def test_a_real_judge_makes_the_bench_carry_quality_against_the_reference(
    harness, registry, tiny_gguf_factory, gemma3_path: Path
) -> None:
    cand, ref = tiny_gguf_factory("q-cand", seed=5), tiny_gguf_factory("q-ref", seed=6)
    sources = [
        publish_model(registry, cand, "q-cand"),
        publish_model(registry, ref, "q-ref"),
        publish_model(registry, gemma3_path, "gemma-judge"),
    ]
    command = _bench(
        model_ids=["q-cand"],
        judge_model_id="gemma-judge",
        reference_model_id="q-ref",
        sources=sources,
    )
    harness.send(command)
    ack = harness.final_ack(command.command_id, timeout=200)
    assert ack["status"] == "ok", ack
    (body,) = _results(harness, command.command_id)
    assert body.judge.model_id == "gemma-judge" and body.reference.model_id == "q-ref"
    (row,) = body.questions
    assert 1 <= row.judge_score <= 10 and 1 <= row.reference_judge_score <= 10
    (category,) = body.categories
    assert category.pct_of_reference == pytest.approx(
        100 * row.judge_score / row.reference_judge_score
    )


def test_bad_bench_requests_are_refused_with_reasons_and_serving_goes_on(
    harness, registry, tiny_gguf_factory
) -> None:
    path = tiny_gguf_factory("fetch-bad", seed=9)
    wrong = publish_model(registry, path, "bad", sha="f" * 64)
    refused = {
        "sha": _bench(model_ids=["bad"], sources=[wrong]),
        "no-judge": _bench(model_ids=["bad"], reference_model_id="bad", sources=[wrong]),
        "category": _bench(model_ids=["bad"], categories=["astrology"], sources=[wrong]),
    }
    for command in refused.values():
        harness.send(command)
    reasons = {k: harness.final_ack(c.command_id)["reason"] for k, c in refused.items()}
    assert reasons["sha"].startswith("cannot fetch bad: sha256 mismatch for bad: expected ffff")
    assert reasons["no-judge"] == "a reference model needs a judge model to score its answers"
    assert "astrology" in reasons["category"]
    assert len(registry.requests) == 1  # only the sha case downloaded anything
    assert harness.agent.store.models() == [] and not list(registry.root.parent.rglob("*.part"))
    assert all(not _results(harness, c.command_id) for c in refused.values())
    assert harness.chat().status_code == 200


def test_models_over_the_disk_or_memory_budget_are_refused_before_downloading(
    broker, tmp_path: Path, tiny_gguf: Path, registry, tiny_gguf_factory
) -> None:
    big = tiny_gguf_factory("fetch-big", n_embd=512, n_layers=8, n_ff=1024)
    budgets = {"disk_budget_mb": 5, "memory_budget_mb": 60}
    harness = Harness(broker, tmp_path, tiny_gguf, profile_overrides=budgets)
    try:
        source = publish_model(registry, big, "big")
        huge = source.model_copy(update={"model_id": "huge", "size_bytes": 61_000_000})
        commands = [_bench(model_ids=[s.model_id], sources=[s]) for s in (source, huge)]
        for command in commands:
            harness.send(command)
        reasons = [harness.final_ack(c.command_id)["reason"] for c in commands]
        assert reasons == [
            "cannot fetch big: model needs 11 MB, disk budget is 5 MB",
            "huge: the file alone is 61 MB, memory budget is 60 MB",
        ]
        assert registry.requests == []
        assert harness.chat().status_code == 200
    finally:
        harness.close()
