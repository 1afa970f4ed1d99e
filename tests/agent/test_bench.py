"""The benchmark runner: real inference on the tiny model; the JSON is the shared bench body."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.bench.runner import BenchConfig, fastest, run_bench, sweep_threads
from agent.inference.refine import StageLimits
from shared import quality
from shared.messages import BenchBody, make_envelope, parse_message
from shared.strategies import DIRECT, parse_list
from shared.suites.builtin import load_builtin
from shared.suites.suite import parse_suite
from shared.topics import Topics

REPO = Path(__file__).resolve().parents[2]
LIMITS = StageLimits(answer_tokens=12, critique_tokens=12, refine_tokens=12)


def _config(model: Path, **overrides: object) -> BenchConfig:
    base: dict[str, object] = {
        "model_path": model,
        "suite": load_builtin().filtered(["math", "writing"], per_category=2),
        "threads": 1,
        "pp_tokens": 32,
        "tg_tokens": 8,
        "repetitions": 2,
        "limits": LIMITS,
        "judge_max_tokens": 8,
        "device_class": "dev-x86-1core",
    }
    return BenchConfig(**{**base, **overrides})  # type: ignore[arg-type]


def test_bench_body_validates_and_travels_as_a_bench_message(tiny_gguf: Path) -> None:
    phases: list[str] = []
    body = run_bench(
        _config(tiny_gguf, judge_path=tiny_gguf, reference_path=tiny_gguf),
        lambda phase, done, total: phases.append(phase),
    )
    again = BenchBody.model_validate_json(body.model_dump_json())
    assert again == body
    envelope = make_envelope("dev-1", 7, body)
    topic = Topics().device("dev-1", envelope.kind)
    parsed = parse_message(topic, envelope.model_dump_json(by_alias=True).encode())
    assert parsed.body == body
    assert {"throughput", "answers", "reference", "judging"} <= set(phases)


def test_bench_measures_speed_latency_and_quality_rows(tiny_gguf: Path) -> None:
    body = run_bench(_config(tiny_gguf, judge_path=tiny_gguf))
    assert body.prefill_tok_s and body.prefill_tok_s.n == 2 and body.prefill_tok_s.mean > 0
    assert body.decode_tok_s and body.decode_tok_s.mean > 0
    assert body.zero_shot and body.refined and body.zero_shot.n == 4
    assert body.refined.e2e_ms_p50 > body.zero_shot.e2e_ms_p50
    assert body.peak_rss_mb > 10 and body.cpu_seconds > 0
    assert len(body.questions) == 8  # 4 questions x (zero-shot, refined)
    assert {(c.category, c.refined) for c in body.categories} == {
        ("math", False), ("math", True), ("writing", False), ("writing", True)
    }  # fmt: skip
    math = next(c for c in body.categories if c.category == "math" and not c.refined)
    assert math.exact_accuracy is not None  # math questions carry exact answers
    # random weights never produce a rating: missing, never scored 0
    assert all(q.judge_score is None for q in body.questions)
    assert math.judge_missing == math.n and math.judge_mean is None
    assert body.judge and body.judge.sha256 and body.reference is None


def test_no_refine_measures_zero_shot_only(tiny_gguf: Path) -> None:
    body = run_bench(_config(tiny_gguf, strategies=(DIRECT,)))
    assert body.refined is None and body.zero_shot is not None
    assert not any(q.refined for q in body.questions)
    assert body.judge is None


def test_every_strategy_gets_a_row_per_item_paired_with_direct(tiny_gguf: Path) -> None:
    chosen = parse_list("refine:2,verify-refine,vote:3")
    body = run_bench(_config(tiny_gguf, strategies=tuple(chosen)))
    names = ["direct", "refine:2", "verify-refine", "vote:3"]
    by_item: dict[str, list[str]] = {}
    for row in body.questions:
        by_item.setdefault(row.item_id, []).append(row.served_by)
    assert len(by_item) == 4 and all(served == names for served in by_item.values())
    assert {c.strategy for c in body.categories} == set(names)
    assert quality.strategies_in(body.questions) == names[1:]
    vote = quality.versus_direct(body.questions, "vote:3")
    assert len(vote) == 8 and sum(r.refined for r in vote) == 4
    checked = {"vote:3": {0.0, 1 / 3, 2 / 3, 1.0}, "verify-refine": {0.0, 1.0}}
    for row in body.questions:  # the strategies that check themselves keep their confidence
        assert row.confidence in checked.get(row.served_by, {None}), row
    cost = {
        row.served_by: row for row in body.questions if row.item_id == body.questions[0].item_id
    }
    assert cost["refine:2"].generated_tokens > cost["direct"].generated_tokens
    assert body.refined is None  # refine:1 was not run, so there is no refine:1 latency


def test_thread_sweep_reports_each_count_and_the_fastest(tiny_gguf: Path) -> None:
    rows = sweep_threads(_config(tiny_gguf), 1)
    assert [threads for threads, _ in rows] == [1]
    assert fastest(rows) == 1


MIXED = b"""{"suite": "mixed", "version": "3"}
{"id": "j", "type": "judged", "category": "writing", "question": "Write a haiku about rain."}
{"id": "e", "type": "exact", "category": "math", "question": "What is 2 + 3?", "answer": "5"}
{"id": "c", "type": "choice", "category": "knowledge", "context": "Sky:", "choices": [" blue", " green", " loud"], "answer": 0}
"""  # noqa: E501


def test_every_item_type_gets_its_per_item_row(tiny_gguf: Path) -> None:
    suite = parse_suite(MIXED, name="mixed")
    body = run_bench(_config(tiny_gguf, suite=suite, reference_path=tiny_gguf))
    assert body.suite and (body.suite.name, body.suite.version) == ("mixed", "3")
    assert body.suite.sha256 == suite.sha256
    rows = {(q.item_id, q.refined): q for q in body.questions}
    assert set(rows) == {("j", False), ("j", True), ("e", False), ("e", True), ("c", False)}
    choice = rows[("c", False)]
    assert choice.type == "choice" and choice.chosen in (0, 1, 2)
    assert choice.correct == (choice.chosen == 0) and choice.correct_norm is not None
    assert choice.reference_correct == choice.correct  # the same model as its own reference
    assert choice.answer is None and choice.generated_tokens == 0
    exact = rows[("e", False)]
    assert exact.type == "exact" and exact.correct is not None and exact.answer is not None
    assert exact.judge_score is None  # exact items are checked, not judged
    judged = rows[("j", True)]
    assert judged.type == "judged" and judged.correct is None and judged.answer is not None
    assert {(c.category, c.type) for c in body.categories} == {
        ("writing", "judged"), ("math", "exact"), ("knowledge", "choice")
    }  # fmt: skip


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "120"}
    return subprocess.run(
        [sys.executable, "-m", "shared.cli", *args],
        capture_output=True, text=True, env=env, timeout=300, cwd=REPO,
    )  # fmt: skip


def test_bench_cli_prints_tables_and_writes_the_bench_body(tiny_gguf: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = _cli(
        "bench", "--model", str(tiny_gguf), "--judge", str(tiny_gguf),
        "--reference", str(tiny_gguf), "--categories", "math,knowledge", "--per-category", "1",
        "--threads", "1", "--threads-sweep", "--pp", "16", "--tg", "4", "--repetitions", "1",
        "--max-tokens", "8", "--json", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr + done.stdout
    assert "tg4 tok/s" in done.stdout and "thread sweep" in done.stdout
    assert "knowledge" in done.stdout and "quality on nine-categories" in done.stdout
    body = BenchBody.model_validate(json.loads(out.read_text()))
    assert body.reference and body.judge and body.threads == 1
    assert {c.category for c in body.categories} == {"math", "knowledge"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--suite-file", "/nonexistent/q.jsonl"], "cannot read"),
        (["--suite", "nope"], "no built-in suite 'nope'"),
        (["--profile", "no-such-class"], "no device-class profile"),
        (["--categories", "astrology"], "no items selected"),
        (["--judge-mode", "vibes"], "--judge-mode must be"),
    ],
)
def test_bench_cli_bad_input_is_a_clear_error(
    tiny_gguf: Path, args: list[str], message: str
) -> None:
    done = _cli("bench", "--model", str(tiny_gguf), "--no-judge", *args)
    assert done.returncode == 1
    assert message in done.stdout


def test_bench_cli_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    done = _cli("bench", "--model", str(tmp_path / "nope.gguf"), "--no-judge")
    assert done.returncode == 1 and "cannot read" in done.stdout


def test_demo_tells_how_to_fetch_missing_models(tmp_path: Path) -> None:
    env_dir = tmp_path / "empty-models"
    env_dir.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO), "EDGEFLEET_MODELS_DIR": str(env_dir)}
    done = subprocess.run(
        [sys.executable, "-m", "shared.cli", "demo", "run"],
        capture_output=True, text=True, env=env, timeout=120, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 1
    assert "edgefleet models fetch-demo" in done.stdout


@pytest.mark.slow
def test_demo_runs_the_real_smollm2_with_refinement(smollm2_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "EDGEFLEET_MODELS_DIR": str(smollm2_path.parent)}
    done = subprocess.run(
        [sys.executable, "-m", "shared.cli", "demo", "run", "--max-tokens", "48"],
        capture_output=True, text=True, env=env, timeout=300, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for marker in ("y0: zero-shot answer", "c0: the model critiques", "y1: refined answer"):
        assert marker in done.stdout
    assert "tok/s" in done.stdout and "prompt tokens evaluated over all stages" in done.stdout


def test_bench_records_a_base_model_as_not_instruction_tuned(
    tiny_gguf_factory: Callable[..., Path],
) -> None:
    base = tiny_gguf_factory("base-for-bench", chat_template=None)
    suite = load_builtin().filtered([], per_category=1, max_items=2)
    body = run_bench(_config(base, strategies=(DIRECT,), suite=suite))
    assert body.model.instruction_tuned is False
