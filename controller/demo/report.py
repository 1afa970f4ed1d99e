"""What the fleet demo found, as plain data: printed by :mod:`.summary`, saved as JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class DemoReport:
    """Everything the summary shows, each part as the API returned it (JSON-ready)."""

    devices: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Device id -> its class, the class's budgets, status and the model it serves."""
    benches: list[dict[str, Any]] = field(default_factory=list)
    """One entry per bench command: device, models, judge, reference, status, reason."""
    judging: list[dict[str, Any]] = field(default_factory=list)
    """One entry per judged bench: its device and class, answers, graded, judged_by (device id
    -> judge model id) and, while any wait, ``pending``: why."""
    accuracy: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    """Device id -> model id -> a verifiable suite's accuracy: k, n, acc, Wilson low/high."""
    scores: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """``GET /scores`` per class: the PeRFICS leaderboard rows, best first."""
    weights: dict[str, float] = field(default_factory=dict)
    plan: dict[str, Any] = field(default_factory=dict)
    """The applied plan after its rollout: id, state, summary, reasons, assignments."""
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Device id -> question, model, answer text and the chat API's timings."""
    timings_s: dict[str, float] = field(default_factory=dict)
    """Wall-clock seconds per step, in order."""
    caveats: list[str] = field(default_factory=list)
    gateway_answer: dict[str, Any] | None = None
    """The answer to the same question through the gateway (``model: auto``), with its device."""
    dashboard: dict[str, str] | None = None
    """With ``--keep-running``: the dashboard's URL (the operator token is never written here)."""
    gateway: dict[str, str] | None = None
    """The gateway's URL, the chat page and a client key: it may only chat, so a script can
    talk to a kept-running fleet at ``{url}/v1/chat/completions``."""

    def write_json(self, path: Path) -> None:
        """Save the report (for scripts and tests)."""
        path.write_text(json.dumps(asdict(self), indent=2))

    @property
    def total_s(self) -> float:
        """The sum of the steps' durations."""
        return sum(self.timings_s.values())
