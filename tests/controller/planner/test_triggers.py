from controller.planner.triggers import ReplanTrigger, score_shifts
from tests.factories.planner import option_score


def test_bursts_of_events_give_one_replan_after_a_quiet_period() -> None:
    trigger = ReplanTrigger(debounce_s=30, max_delay_s=300)
    assert trigger.due(0) is None
    for t in range(0, 50, 10):
        trigger.note(f"device pi-{t} joined", t)
        assert trigger.due(t + 1) is None
    assert trigger.due(69) is None
    assert trigger.due(70) == [f"device pi-{t} joined" for t in range(0, 50, 10)]
    assert trigger.due(500) is None  # reset after firing


def test_a_steady_stream_still_replans_by_the_maximum_delay() -> None:
    trigger = ReplanTrigger(debounce_s=30, max_delay_s=100)
    fired = []
    for t in range(0, 250, 10):
        trigger.note("device went offline", t)
        if trigger.due(t) is not None:
            fired.append(t)
    assert fired == [100, 210]


def test_score_shifts_beyond_the_margin_are_reasons() -> None:
    a = option_score("pi4", "m", "direct", psi=2.0, memory_mb=1, p95_s=1)
    b = option_score("pi4", "m", "direct", psi=2.03, memory_mb=1, p95_s=1)
    c = option_score("pi4", "m", "direct", psi=2.10, memory_mb=1, p95_s=1)
    n = option_score("pi4", "n", "refine:1", psi=1.0, memory_mb=1, p95_s=1)
    assert score_shifts({"pi4": [a]}, {"pi4": [b]}, margin=0.02) == []
    assert score_shifts({"pi4": [a]}, {"pi4": [c, n]}, margin=0.02) == [
        "pi4: m Psi 2.0000 -> 2.1000",
        "pi4: n refine:1 appeared",
    ]
