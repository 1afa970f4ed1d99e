"""Suite benchmark: the built-in suites on the demo models, with intervals and Pi-sized timing.

Usage (from the repo root):

    PYTHONPATH=. python bench/suites.py [--choice-per-category 12] [--gsm8k-items 20] \
        [--judged] [--json suites.json]

Each demo model runs the built-in suites on one thread (``edgefleet bench``'s
runner): the multiple-choice suite with Gemma-3-270M as reference, a GSM8K
sample zero-shot and refined (no reference: answering it again with Gemma
would double the time, and accuracy needs none), and with ``--judged`` the
nine-category set judged by Gemma-3-270M. Printed
per (suite, model): accuracy or judge mean with a 95 % interval and n,
zero-shot vs refined as a paired comparison (McNemar for right/wrong items),
B against the reference, and the measured time per item. The last table
extrapolates a whole bench of each suite to a Raspberry Pi Zero 2 W from the
per-item token counts measured here and the planner's nominal rates for that
class (decode ~ memory bandwidth / weights, prefill ~ compute / 2 x params):
a prediction, labelled as one.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from agent.bench.runner import BenchConfig, run_bench
from agent.inference.refine import StageLimits
from controller.planner.predict import ClassCalibration, predicted_rates
from controller.planner.specs import model_spec_from_gguf
from shared import quality
from shared.demo_models import DEMO_MODELS, models_dir
from shared.gguf_info import read_gguf_info
from shared.messages import BenchBody, QuestionResult
from shared.profiles import DeviceProfile, parse_profile
from shared.suites.builtin import load_builtin

ROOT = Path(__file__).resolve().parents[1]
PI = "pizero2w-512mb"
REFERENCE = "gemma3-270m-q4_k_m"


def _pct(acc: quality.Accuracy | None) -> str:
    if acc is None:
        return "-"
    low, high = 100 * acc.interval.low, 100 * acc.interval.high
    return f"{100 * acc.value:.1f} % [{low:.0f}, {high:.0f}] (n={acc.n})"


def _estimate(est: quality.QualityEstimate | None, sign: str = "") -> str:
    if est is None:
        return "-"
    low, high = est.interval.low, est.interval.high
    return f"{est.value:{sign}.2f} [{low:{sign}.2f}, {high:{sign}.2f}] (n={est.n_questions})"


def _paired(rows: list[QuestionResult]) -> str:
    cmp = quality.paired_comparison(rows)
    if cmp is None:
        return "-"
    scale, unit = (1, " judge pts") if cmp.mcnemar_p is None else (100, " pts")
    low, high = scale * cmp.interval.low, scale * cmp.interval.high
    text = f"{scale * cmp.difference:+.1f}{unit} [{low:+.1f}, {high:+.1f}]"
    if cmp.mcnemar_p is not None:
        text += f", {cmp.better} better / {cmp.worse} worse, McNemar p={cmp.mcnemar_p:.2g}"
    return text


def _judged(rows: list[QuestionResult], refined: bool) -> str:
    scores = [r.judge_score for r in rows if r.refined == refined and r.judge_score is not None]
    if not scores:
        return "-"
    return f"judge mean {statistics.fmean(scores):.2f} (n={len(scores)})"


def _seconds_per_item(rows: list[QuestionResult], refined: bool) -> float | None:
    times = [r.e2e_ms / 1000 for r in rows if r.refined == refined]
    return statistics.fmean(times) if times else None


def _pi_seconds(body: BenchBody, profile: DeviceProfile, refined: bool) -> float | None:
    """One item's predicted time on the Pi class, from this run's per-item token counts."""
    rows = [r for r in body.questions if r.refined == refined]
    if not rows:
        return None
    info = read_gguf_info(models_dir() / DEMO_MODELS[body.model.model_id].filename)
    spec = model_spec_from_gguf(body.model.model_id, info, [profile])
    nominal = ClassCalibration(profile.memory_bandwidth_gbs, profile.compute_gflops, 0.25, 1.5, 0)
    prefill_tok_s, decode_tok_s = predicted_rates(spec, nominal)
    prompt = statistics.fmean(r.prompt_tokens_evaluated for r in rows)
    generated = statistics.fmean(r.generated_tokens for r in rows)
    return prompt / prefill_tok_s + generated / decode_tok_s


def _row(suite: str, body: BenchBody, profile: DeviceProfile) -> dict[str, object]:
    rows = list(body.questions)
    kinds = {r.type for r in rows}
    zero, refined = _seconds_per_item(rows, False), _seconds_per_item(rows, True)
    pi_zero, pi_refined = _pi_seconds(body, profile, False), _pi_seconds(body, profile, True)
    n_items = len({r.item_id for r in rows})
    return {
        "suite": suite,
        "model": body.model.model_id,
        "n_items": n_items,
        "accuracy_zero_shot": _pct(quality.accuracy(rows))
        if kinds - {"judged"}
        else _judged(rows, False),
        "accuracy_refined": _pct(quality.accuracy(rows, refined=True))
        if kinds - {"judged"}
        else _judged(rows, True),
        "acc_norm": _pct(quality.accuracy(rows, norm=True)) if "choice" in kinds else "-",
        "refined_minus_zero_shot": _paired(rows),
        "B": _estimate(quality.baseline_quality(rows)),
        "I": _estimate(quality.improvement_estimate(rows), "+"),
        "s_per_item_zero_shot": zero,
        "s_per_item_refined": refined,
        "decode_tok_s": body.decode_tok_s.mean if body.decode_tok_s else None,
        "pi_s_per_item_zero_shot": pi_zero,
        "pi_s_per_item_refined": pi_refined,
        "pi_bench_minutes": ((pi_zero or 0) + (pi_refined or 0)) * n_items / 60,
        "contended": body.contended,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--choice-per-category", type=int, default=12)
    parser.add_argument("--gsm8k-items", type=int, default=20)
    parser.add_argument("--judged", action="store_true", help="also the judged set (slow)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    profile = parse_profile((ROOT / "firmware-config" / "classes" / f"{PI}.yaml").read_text())
    reference = models_dir() / DEMO_MODELS[REFERENCE].filename
    plans = [
        ("everyday-choice", load_builtin("everyday-choice"), False),
        (
            "gsm8k-sample",
            load_builtin("gsm8k-sample").filtered([], max_items=args.gsm8k_items),
            True,
        ),
        ("nine-categories", load_builtin("nine-categories"), True),
    ]
    out = []
    for suite_name, suite, refine in plans:
        for model_id, model in DEMO_MODELS.items():
            config = BenchConfig(
                model_path=models_dir() / model.filename,
                suite=suite,
                reference_path=None if suite_name == "gsm8k-sample" else reference,
                judge_path=reference if suite_name == "nine-categories" else None,
                refine=refine,
                threads=1,
                model_id=model_id,
                reference_model_id=REFERENCE,
                judge_model_id=REFERENCE,
                limits=StageLimits(),
                device_class="dev-x86-1core",
            )
            body = run_bench(config)
            out.append(_row(suite_name, body, profile))
            print(json.dumps(out[-1]), flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
