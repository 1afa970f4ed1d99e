"""``model: auto``: the question's kind (a keyword heuristic) and the model best measured in it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import Engine

from controller.core.db import session_scope
from controller.gateway.auto_model import category_quality, pick
from controller.gateway.question_kind import QuestionKind, classify
from controller.gateway.routing import Route
from controller.models import BenchmarkQuestion, BenchmarkRun
from shared.suites.builtin import load_builtin
from shared.suites.items import ChoiceItem
from tests.factories.planner import questions_for

ROUTES = [
    Route("small-1", "m-small", "http://s1", None),
    Route("small-2", "m-small", "http://s2", None),
    Route("big-1", "m-big", "http://b1", None),
]
QUALITY = {"m-small": {"writing": 92.0, "math": 40.0}, "m-big": {"writing": 80.0, "math": 85.0}}


def test_the_heuristic_names_the_suites_own_categories() -> None:
    """Written against these very questions, so this is an upper bound, not its accuracy."""
    items = [i for i in load_builtin("nine-categories").items if not isinstance(i, ChoiceItem)]
    hits = sum(classify(item.question).category == item.category for item in items)
    assert len(items) == 36 and hits >= 0.9 * len(items)


def test_each_kind_says_what_matched_and_the_rest_is_generic() -> None:
    assert classify("What is 17 * 3?") == QuestionKind("math", "matched '7 * 3'")
    assert classify("How do I reverse a list in Python?").category == "coding"
    assert classify("Hello there") == QuestionKind("generic", "no category's words matched")
    assert classify("x" * 100_000 + " Write a poem").category == "generic"  # only the start


def test_the_model_best_in_the_questions_category_is_picked() -> None:
    math = pick(ROUTES, QUALITY, classify("Solve for x: 3x + 7 = 25"), {})
    writing = pick(ROUTES, QUALITY, classify("Write a poem about rain"), {})
    assert (math.model_id, writing.model_id) == ("m-big", "m-small")
    assert math.reason == "best measured math quality served: 85% of the reference"
    assert math.extension()["kind"] == "math" and math.extension()["model"] == "m-big"


def test_equal_or_unmeasured_models_go_to_the_less_loaded() -> None:
    tied = {"m-small": {"math": 85.0}, "m-big": {"math": 85.0}}
    busy_big = {"big-1": 2, "small-1": 1}  # m-big: 2 per device, m-small: 0.5
    choice = pick(ROUTES, tied, classify("Solve 2 + 2"), busy_big)
    assert choice.model_id == "m-small" and "tied with m-big" in choice.reason
    unmeasured = pick(ROUTES, QUALITY, classify("Who wrote Hamlet?"), {"small-1": 3})
    assert unmeasured.model_id == "m-big" and "no served model is measured" in unmeasured.reason


def test_category_quality_reads_each_models_direct_answers_from_the_database(
    sqlite_engine: Engine,
) -> None:
    pct = {"m-small": {"writing": (90.0, 95.0)}, "m-big": {"writing": (60.0, 99.0)}}
    with session_scope(sqlite_engine) as session:
        for seq, (model_id, categories) in enumerate(pct.items()):
            run = BenchmarkRun(
                device_id=f"d{seq}",
                device_class="pi4",
                model_id=model_id,
                run_id=f"r{seq}",
                seq=seq,
                threads=1,
                n_ctx=512,
                peak_rss_mb=50.0,
                decode_tok_s=10.0,
                prefill_tok_s=100.0,
                sent_at=datetime(2026, 1, 1, tzinfo=UTC),
            )
            session.add(run)
            session.flush()
            assert run.id is not None
            for q in questions_for(categories, seed=seq):
                row = json.loads(q.model_dump_json())
                session.add(
                    BenchmarkQuestion(
                        **row,
                        run_pk=run.id,
                        device_id=f"d{seq}",
                        device_class="pi4",
                        model_id=model_id,
                        measured_at=datetime(2026, 1, 1, tzinfo=UTC),
                    )
                )
    quality = category_quality(sqlite_engine, {"m-small", "m-big"})
    assert round(quality["m-small"]["writing"]) == 90  # direct, not the refined 95
    assert round(quality["m-big"]["writing"]) == 60
    choice = pick(ROUTES, quality, classify("Write a letter"), {})
    assert choice.model_id == "m-small"
