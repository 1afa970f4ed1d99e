"""Why the chosen model's next-best test-time strategy lost: the sentence a plan carries.

An option is (model, strategy), so besides the runner-up option an operator
asks "would this model have done better thinking longer (or less)?". The
answer names the strategy that came closest on the same model and the terms
it lost on: its paired gain I over ``direct`` and its device time C.
"""

from __future__ import annotations

from controller.planner.assign import Decision
from controller.planner.scores import OptionScore


def _terms(score: OptionScore) -> str:
    ci = score.i_interval
    interval = f" [{ci.low:+.3f}, {ci.high:+.3f}]" if ci else ""
    return f"I {score.i:+.3f}{interval}, C {score.c:.3f}"


def strategy_runner_up(decision: Decision) -> str | None:
    """A sentence on the chosen model's best other strategy; None when nothing was chosen."""
    chosen, view = decision.chosen, decision.view
    if chosen is None or view is None:
        return None
    model = chosen.option.model_id
    device_rejected = {r.option: r for r in decision.device_rejected}
    rival = next(
        (
            s
            for s in view.survivors
            if s.option.model_id == model and s.option.strategy != chosen.option.strategy
        ),
        None,
    )
    head = f"strategy runner-up on {model}:"
    if rival is not None:
        refused = device_rejected.get(rival.option)
        if refused is not None:
            return f"{head} {rival.option.strategy} ruled out for this device: {refused.reason}"
        return (
            f"{head} {rival.option.strategy} lost to {chosen.option.strategy}, Psi "
            f"{rival.psi:.4f} < {chosen.psi:.4f} ({_terms(rival)} vs {_terms(chosen)})"
        )
    rejected = sorted(o for o in view.rejected if o.model_id == model and o != chosen.option)
    if rejected:
        first = view.rejected[rejected[0]]
        return f"{head} {first.option.strategy} ruled out: {first.reason}"
    return f"{head} none besides {chosen.option.strategy} was measured"
