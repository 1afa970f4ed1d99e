"""Test-time strategies side by side: accuracy vs ``direct`` (paired), device time, KV reuse.

Usage (from the repo root):

    PYTHONPATH=. python bench/strategies.py [--items 12] [--gsm8k-items 6] \
        [--answer-tokens 96] [--model ID] [--json out.json]

Both demo models answer the same exactly-checkable items (the nine-category
set's items with an answer, and the first ``--gsm8k-items`` of gsm8k-sample) with
every strategy, one thread, in one run. Printed per (model, suite, strategy):
accuracy with a Wilson interval and n, the paired difference against
``direct`` on the same items (bootstrap interval, McNemar), the measured
seconds per answer, and the prefill tokens evaluated against what a naive
implementation (no KV reuse) would evaluate.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from agent.inference.refine import StageLimits
from agent.inference.runtime import ModelRuntime
from agent.inference.strategies import StrategyResult, run
from shared import quality
from shared.demo_models import DEMO_MODELS, models_dir
from shared.messages import QuestionResult
from shared.strategies import parse_list
from shared.suites.answers import is_correct
from shared.suites.builtin import load_builtin
from shared.suites.items import ExactItem, JudgedItem


def _items(nine_limit: int, gsm8k_limit: int) -> dict[str, list[JudgedItem | ExactItem]]:
    nine = [
        item
        for item in load_builtin("nine-categories").items
        if isinstance(item, JudgedItem | ExactItem) and item.answer is not None and item.check
    ]
    suites: dict[str, list[JudgedItem | ExactItem]] = {
        "nine-categories (checkable)": nine[:nine_limit]
    }
    if gsm8k_limit > 0:
        gsm = load_builtin("gsm8k-sample").filtered([], max_items=gsm8k_limit).items
        suites["gsm8k-sample"] = [i for i in gsm if isinstance(i, ExactItem)]
    return suites


def _row(item: JudgedItem | ExactItem, result: StrategyResult) -> QuestionResult:
    assert item.answer is not None and item.check is not None
    return QuestionResult(
        item_id=item.id,
        type="exact",
        category=item.category,
        refined=result.strategy.refines,
        strategy=result.strategy.name,
        correct=is_correct(result.answer, item.answer, item.check),
        e2e_ms=result.total_s * 1000,
        generated_tokens=result.generated_tokens,
        prompt_tokens_evaluated=result.prompt_tokens_evaluated,
    )


def _pct(acc: quality.Accuracy | None) -> str:
    if acc is None:
        return "-"
    return f"{100 * acc.value:.0f} % [{100 * acc.interval.low:.0f}, {100 * acc.interval.high:.0f}]"


def _paired(rows: list[QuestionResult], strategy: str) -> str:
    if strategy == "direct":
        return "(baseline)"
    cmp = quality.paired_comparison(quality.versus_direct(rows, strategy))
    if cmp is None:
        return "-"
    low, high = 100 * cmp.interval.low, 100 * cmp.interval.high
    return (
        f"{100 * cmp.difference:+.0f} pts [{low:+.0f}, {high:+.0f}], "
        f"{cmp.better} better / {cmp.worse} worse, McNemar p={cmp.mcnemar_p:.2g}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=12, help="checkable nine-category items")
    parser.add_argument("--gsm8k-items", type=int, default=6)
    parser.add_argument("--answer-tokens", type=int, default=96)
    parser.add_argument("--strategies", default="direct,refine:1,verify-refine,vote:5")
    parser.add_argument("--model", choices=list(DEMO_MODELS), action="append")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    strategies = parse_list(args.strategies)
    suites = _items(args.items, args.gsm8k_items)
    tokens = args.answer_tokens
    limits = StageLimits(
        answer_tokens=tokens, critique_tokens=min(64, tokens), refine_tokens=tokens
    )
    out = []
    for model in (DEMO_MODELS[m] for m in args.model or DEMO_MODELS):
        runtime = ModelRuntime(models_dir() / model.filename, threads=1, n_ctx=2048, seed=0)
        try:
            for suite, items in suites.items():
                rows: list[QuestionResult] = []
                costs: dict[str, list[StrategyResult]] = {s.name: [] for s in strategies}
                for item in items:
                    for strategy in strategies:
                        runtime.reset()  # each strategy pays its own prefill, as when served alone
                        result = run(
                            runtime, item.question, strategy, limits=limits, match=item.check
                        )
                        rows.append(_row(item, result))
                        costs[strategy.name].append(result)
                for strategy in strategies:
                    name, results = strategy.name, costs[strategy.name]
                    mine = [r for r in rows if r.served_by == name]
                    line = {
                        "model": model.model_id,
                        "suite": suite,
                        "strategy": name,
                        "n": len(mine),
                        "accuracy": _pct(quality.accuracy(mine, refined=strategy.refines)),
                        "vs_direct": _paired(rows, name),
                        "s_per_answer": statistics.fmean(r.total_s for r in results),
                        "stages_per_answer": statistics.fmean(len(r.stages) for r in results),
                        "prefill_evaluated": sum(r.prompt_tokens_evaluated for r in results),
                        "prefill_naive": sum(r.naive_prompt_tokens for r in results),
                    }
                    out.append(line)
                    print(json.dumps(line), flush=True)
        finally:
            runtime.close()
    if args.json:
        args.json.write_text(json.dumps({"finished": time.time(), "rows": out}, indent=1))


if __name__ == "__main__":
    main()
