"""``model: auto``: the served model measured best in the question's category, then load.

The question's category comes from :mod:`controller.gateway.question_kind` (a cheap
heuristic); each served model's quality in it is its direct answers' mean score as a
percentage of the reference model's on the same items (the leaderboard's ``% of
reference``; the mean over the category's item types), pooled over device classes since
quality belongs to the model file. The best wins; equal ones (or none measured in that
category) go to the model whose devices have the fewest open requests each. Quality is
read at most once a minute: grades arrive in minutes, requests in milliseconds.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from statistics import fmean

import anyio
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from controller.gateway.question_kind import QuestionKind, classify
from controller.gateway.routing import AutoChoice, Route
from controller.models import BenchmarkQuestion
from shared.chat import ChatRequest
from shared.messages import QuestionResult
from shared.quality import category_rows
from shared.strategies import DIRECT

QUALITY_TTL_S = 60.0
Quality = Mapping[str, Mapping[str, float]]
"""Model -> category -> % of the reference."""


def category_quality(engine: Engine, model_ids: Collection[str]) -> dict[str, dict[str, float]]:
    """Per model, per category: its direct answers' % of the reference (measured items only)."""
    query = select(BenchmarkQuestion).where(col(BenchmarkQuestion.model_id).in_(model_ids))
    by_model: dict[str, list[QuestionResult]] = defaultdict(list)
    with Session(engine) as session:
        for row in session.exec(query):
            by_model[row.model_id].append(QuestionResult.model_validate(row, from_attributes=True))
    quality: dict[str, dict[str, float]] = {}
    for model_id, results in by_model.items():
        shares: dict[str, list[float]] = defaultdict(list)
        for group in category_rows(results):
            if group.strategy == DIRECT.name and group.pct_of_reference is not None:
                shares[group.category].append(group.pct_of_reference)
        quality[model_id] = {category: fmean(values) for category, values in shares.items()}
    return quality


def pick(
    routes: Sequence[Route], quality: Quality, kind: QuestionKind, inflight: Mapping[str, int]
) -> AutoChoice:
    """The served model best in ``kind``'s category; ties and unmeasured ones by load."""
    models = sorted({r.model_id for r in routes})

    def load(model_id: str) -> float:
        devices = [r.device_id for r in routes if r.model_id == model_id]
        return sum(inflight.get(d, 0) for d in devices) / len(devices)

    def measured(model_id: str) -> float | None:
        return quality.get(model_id, {}).get(kind.category)

    best = min(models, key=lambda m: (measured(m) is None, -(measured(m) or 0.0), load(m), m))
    score = measured(best)
    if score is None:
        reason = f"no served model is measured in {kind.category}: the least loaded"
    else:
        reason = f"best measured {kind.category} quality served: {score:.0f}% of the reference"
        tied = [m for m in models if m != best and measured(m) == score]
        if tied:
            reason += f" (tied with {', '.join(tied)}: the less loaded)"
    return AutoChoice(best, kind, reason)


def question_of(request: ChatRequest) -> str:
    """The text the kind is read from: the last user message."""
    users = [m.as_dict()["content"] for m in request.messages if m.role == "user"]
    return users[-1] if users else ""


class AutoModels:
    """Picks ``auto``'s model per request, with the quality table cached a minute."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._quality: Quality = {}
        self._models: frozenset[str] | None = None
        self._read_at = 0.0

    async def choose(
        self, request: ChatRequest, routes: list[Route], inflight: Mapping[str, int]
    ) -> tuple[list[Route], AutoChoice]:
        """The routes of the model picked for ``request``'s question, and the pick."""
        models = frozenset(r.model_id for r in routes)
        stale = time.monotonic() - self._read_at > QUALITY_TTL_S
        if stale or models != self._models:
            self._quality = await anyio.to_thread.run_sync(category_quality, self.engine, models)
            self._models, self._read_at = models, time.monotonic()
        choice = pick(routes, self._quality, classify(question_of(request)), inflight)
        return [r for r in routes if r.model_id == choice.model_id], choice
