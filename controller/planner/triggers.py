"""When to re-plan: device joins, devices going offline, scores moving beyond the margin; debounced.

Events arrive in bursts (a rack of Pis booting, a benchmark campaign
finishing), so reasons are collected and the re-plan fires once the events
have been quiet for ``debounce_s``, or at the latest ``max_delay_s`` after the
first one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from controller.planner.scores import OptionScore


@dataclass
class ReplanTrigger:
    """Collects reasons to re-plan and releases them once per quiet period."""

    debounce_s: float = 30.0
    max_delay_s: float = 300.0
    _reasons: list[str] = field(default_factory=list)
    _first: float | None = None
    _last: float | None = None

    def note(self, reason: str, now: float) -> None:
        """Record one event (a device joined, went offline, a score moved)."""
        self._reasons.append(reason)
        self._first = now if self._first is None else self._first
        self._last = now

    def due(self, now: float) -> list[str] | None:
        """The collected reasons when a re-plan should run now (and reset), else None."""
        if self._first is None or self._last is None:
            return None
        quiet = now - self._last >= self.debounce_s
        overdue = now - self._first >= self.max_delay_s
        if not (quiet or overdue):
            return None
        reasons, self._reasons = self._reasons, []
        self._first = self._last = None
        return reasons


def score_shifts(
    before: Mapping[str, Sequence[OptionScore]],
    after: Mapping[str, Sequence[OptionScore]],
    margin: float,
) -> list[str]:
    """Options whose Psi moved by more than ``margin`` (relative), appeared, or vanished."""
    old = {(c, s.option): s.psi for c, ss in before.items() for s in ss}
    new = {(c, s.option): s.psi for c, ss in after.items() for s in ss}
    out = []
    for key in sorted(old.keys() | new.keys()):
        cls, option = key
        a, b = old.get(key), new.get(key)
        if a is None or b is None:
            out.append(f"{cls}: {option.label()} {'appeared' if a is None else 'vanished'}")
        elif abs(b - a) > margin * abs(a):
            out.append(f"{cls}: {option.label()} Psi {a:.4f} -> {b:.4f}")
    return out
