"""The escalation threshold's routes: calibrated from stored bench rows, read and set by role."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from sqlmodel import select

from controller.core.db import session_scope
from controller.gateway.escalation import EscalationSettings, Escalator
from controller.models import BenchmarkQuestion, BenchmarkRun
from tests.controller.api.conftest import Api
from tests.controller.plans.db_world import AT, add_run

SUITE = "ab" * 32
QUERY: dict[str, str | float] = {
    "small_model": "m-small",
    "strong_model": "m-big",
    "strategy": "vote:3",
    "floor": 0.9,
}


def _rows(api: Api) -> None:
    """30 items the small model is sure of and right on; 10 it is unsure of and wrong on.

    The strong model is right on all 40, at four times the small model's time.
    """
    with session_scope(api.engine) as session:
        for seq, model_id in enumerate(("m-small", "m-big"), start=1):
            add_run(session, model_id, "d1", "big-box", seq)
        runs = {r.model_id: r for r in session.exec(select(BenchmarkRun)).all()}
        for run in runs.values():
            run.suite_sha256 = SUITE
        pks = {model_id: run.id for model_id, run in runs.items() if run.id is not None}
        for i in range(40):
            sure = i < 30
            for model_id, strategy, confidence, correct, ms in (
                ("m-small", "vote:3", 1.0 if sure else 1 / 3, sure, 1000.0),
                ("m-big", "direct", None, True, 4000.0),
            ):
                session.add(
                    BenchmarkQuestion(
                        run_pk=pks[model_id],
                        device_id="d1",
                        device_class="big-box",
                        model_id=model_id,
                        item_id=f"q{i}",
                        type="exact",
                        category="math",
                        refined=strategy != "direct",
                        strategy=strategy,
                        correct=correct,
                        confidence=confidence,
                        e2e_ms=ms,
                        generated_tokens=8,
                        prompt_tokens_evaluated=20,
                        measured_at=AT,
                    )
                )


def test_the_threshold_is_calibrated_from_both_models_rows_on_one_suite(api: Api) -> None:
    _rows(api)
    with api.client("viewer") as viewer:
        response = viewer.get("/api/v1/gateway/escalation/calibration", params=QUERY)
    assert response.status_code == 200, response.text
    table = response.json()
    assert table["suite_sha256"] == SUITE and table["n"] == 40
    assert table["chosen_threshold"] == 1.0  # escalate the unsure, keep the sure
    chosen = next(r for r in table["rows"] if r["threshold"] == 1.0)
    assert chosen["escalated"] == 10 and chosen["accuracy"] == 1.0
    assert chosen["conforming_lower_bound"] >= 0.9
    assert chosen["device_s_per_answer"] == 2.0 and chosen["saving"] == 2.0
    never = table["rows"][0]
    assert never["threshold"] == 0.0 and never["conforming_lower_bound"] < 0.9


def test_calibration_refuses_what_it_cannot_compute_and_the_roles_it_does_not_serve(
    api: Api,
) -> None:
    with api.client("viewer") as viewer:
        missing = viewer.get("/api/v1/gateway/escalation/calibration", params=QUERY)
        assert missing.status_code == 404 and "m-small" in missing.json()["detail"]
        bad = viewer.get(
            "/api/v1/gateway/escalation/calibration", params={**QUERY, "strategy": "guess"}
        )
        assert bad.status_code == 422
        assert viewer.put("/api/v1/gateway/escalation", json={"threshold": 0.5}).status_code == 403
        state = viewer.get("/api/v1/gateway/escalation").json()
        assert state == {
            "enabled": False,
            "threshold": None,
            "source": "unset",
            "calibrated": False,
        }
    with api.client("client") as client:
        assert client.get("/api/v1/gateway/escalation").status_code == 403
    with api.client("operator") as operator:
        set_ = operator.put("/api/v1/gateway/escalation", json={"threshold": 0.67})
        assert set_.json() == {
            "enabled": False,
            "threshold": 0.67,
            "source": "operator",
            "calibrated": False,
        }


def test_without_an_operator_threshold_the_gateway_uses_the_pairs_calibrated_one(
    api: Api,
) -> None:
    _rows(api)
    settings = EscalationSettings(enabled=True, calibrated=True, floor=0.9, confidence=0.95)
    escalator = Escalator(api.engine, settings, CollectorRegistry())
    assert escalator.calibrated_threshold("m-small", "m-big", "vote:3") == 1.0
    assert escalator.calibrated_threshold("m-small", "m-big", "verify-refine") is None
    strict = EscalationSettings(enabled=True, calibrated=True, floor=0.99, confidence=0.95)
    unmet = Escalator(api.engine, strict, CollectorRegistry())  # 40 items cannot show 0.99
    assert unmet.calibrated_threshold("m-small", "m-big", "vote:3") is None
