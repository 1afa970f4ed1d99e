"""The escalation cascade calibrated on real answers: share escalated, quality kept, time saved.

Usage (from the repo root):

    PYTHONPATH=. python bench/escalation.py [--items 30] [--small-strategy vote:3] \
        [--floor 0.8] [--confidence 0.9] [--json out.json]

The small demo model (SmolLM2-135M) answers the first ``--items`` everyday-choice
questions, asked as generation with lettered options and checked by the option-letter
normaliser, with a strategy that reports a confidence (``vote:k`` by default); then the
strong one (Gemma-3-270M) answers the same questions directly. One model at a time, one
llama.cpp thread each. The paired rows go through the controller's calibration
(``controller.planner.escalation``), and every candidate threshold's row is printed:
share escalated, cascade accuracy, quality retained (cascade / strong accuracy, paired
bootstrap interval), the conforming share's exact lower bound, and device-seconds per
answer against always asking the strong model.
"""

from __future__ import annotations

import argparse
import json
import string
import time
from pathlib import Path

from agent.inference.refine import StageLimits
from agent.inference.runtime import ModelRuntime
from agent.inference.strategies import StrategyResult, run
from controller.planner.escalation import ESCALATE_ALL, PairedItem, ThresholdRow, calibrate
from shared.demo_models import DEMO_MODELS, models_dir
from shared.strategies import Strategy
from shared.suites.answers import Match, option_letter
from shared.suites.builtin import load_builtin
from shared.suites.items import ChoiceItem

SMALL, STRONG = "smollm2-135m-instruct-q4_1", "gemma3-270m-q4_k_m"


def _questions(limit: int) -> list[tuple[str, str]]:
    """(prompt, right letter) for the first ``limit`` choice items, one per category in turn."""
    items = [i for i in load_builtin("everyday-choice").items if isinstance(i, ChoiceItem)]
    by_category: dict[str, list[ChoiceItem]] = {}
    for item in items:
        by_category.setdefault(item.category, []).append(item)
    interleaved = [c[i] for i in range(12) for c in by_category.values() if i < len(c)]
    out = []
    for item in interleaved[:limit]:
        context = item.context.removesuffix("Answer:").strip()
        options = "\n".join(
            f"{letter}. {choice.strip()}"
            for letter, choice in zip(string.ascii_uppercase, item.choices, strict=False)
        )
        prompt = f"{context}\n{options}\nReply with the letter of the right option only."
        out.append((prompt, string.ascii_uppercase[item.answer]))
    return out


def _answers(
    model_id: str, questions: list[tuple[str, str]], strategy: Strategy, tokens: int
) -> list[StrategyResult]:
    model = DEMO_MODELS[model_id]
    runtime = ModelRuntime(models_dir() / model.filename, threads=1, n_ctx=2048, seed=0)
    limits = StageLimits(answer_tokens=tokens, critique_tokens=tokens, refine_tokens=tokens)
    try:
        results = []
        for prompt, _ in questions:
            runtime.reset()
            results.append(run(runtime, prompt, strategy, limits=limits, match=Match.LETTER))
        return results
    finally:
        runtime.close()


def _line(row: ThresholdRow, chosen: bool) -> str:
    threshold = "all" if row.threshold == ESCALATE_ALL else f"{row.threshold:.2f}"
    interval = row.retained_interval
    retained = "-"
    if row.retained is not None and interval is not None:
        retained = (
            f"{100 * row.retained:.0f} % [{100 * interval.low:.0f}, {100 * interval.high:.0f}]"
        )
    return (
        f"| {threshold}{' (chosen)' if chosen else ''} | {100 * row.share_escalated:.0f} % "
        f"({row.escalated}/{row.n}) | {100 * row.accuracy:.0f} % | {retained} | "
        f"{row.conforming}/{row.n}, low {row.conforming_low:.2f} | "
        f"{row.device_s_per_answer:.2f} | {row.strong_s_per_answer:.2f} | {row.saving:.2f}x |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=30)
    parser.add_argument("--small-strategy", default="vote:3")
    parser.add_argument("--answer-tokens", type=int, default=12)
    parser.add_argument("--floor", type=float, default=0.8)
    parser.add_argument("--confidence", type=float, default=0.9)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    questions = _questions(args.items)
    started = time.perf_counter()
    small = _answers(SMALL, questions, Strategy.parse(args.small_strategy), args.answer_tokens)
    strong = _answers(STRONG, questions, Strategy.parse("direct"), args.answer_tokens)
    paired = [
        PairedItem(
            confidence=s.confidence if s.confidence is not None else 0.0,
            small_correct=option_letter(s.answer) == right,
            strong_correct=option_letter(g.answer) == right,
            small_s=s.total_s,
            strong_s=g.total_s,
        )
        for s, g, (_, right) in zip(small, strong, questions, strict=True)
    ]
    calibration = calibrate(paired, floor=args.floor, confidence=args.confidence)
    print(
        f"n={calibration.n} small={SMALL} {args.small_strategy} strong={STRONG} direct "
        f"floor={args.floor} confidence={args.confidence} "
        f"small acc={sum(p.small_correct for p in paired)}/{len(paired)} "
        f"strong acc={sum(p.strong_correct for p in paired)}/{len(paired)} "
        f"wall={time.perf_counter() - started:.0f}s"
    )
    print(
        "| threshold | escalated | cascade accuracy | quality retained | conforming (lower bound) "
        "| device-s / answer | strong only | saving |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in calibration.rows:
        print(_line(row, row is calibration.chosen))
    if args.json:
        args.json.write_text(json.dumps([p.__dict__ for p in paired], indent=1))


if __name__ == "__main__":
    main()
