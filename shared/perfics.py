"""The PeRFICS score (Performance, Refinement and Inference Cost Score).

From Shashidhar et al., "Democratizing LLMs" (Findings of EMNLP 2023,
arXiv 2310.07611)::

    Psi(m) = (eta * exp(kappa * (alpha*B + beta*I)) + rho*E) / (exp(gamma*C) + delta)

The paper gives the form but neither the exact meaning of each term nor the
coefficients. The definitions here are edgefleet's own (see PERFICS.md):

- ``B``: baseline (zero-shot) quality as a fraction of a reference model's.
- ``I``: improvement from self-refinement, refined quality minus ``B``;
  0 when refinement is off, and it may be negative.
- ``E``: extrinsic merit in [0, 1] that the operator sets per model.
- ``C``: inference cost; the device time of the standard answer as a fraction
  of the device class's latency budget (the planner's view), or the peak
  memory footprint in GB (the hardware-independent leaderboard view).

With the defaults and ``E = 0`` the score is ``exp(B + I - C/10)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

BYTES_PER_GB = 1_000_000_000


class PerficsWeights(BaseModel):
    """The seven coefficients of the score; defaults from PERFICS.md."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    eta: float = Field(1.0, gt=0, description="scale of the quality term")
    kappa: float = Field(1.0, gt=0, description="sharpness of the quality exponential")
    alpha: float = Field(1.0, ge=0, description="weight of baseline quality B")
    beta: float = Field(1.0, ge=0, description="weight of refinement improvement I")
    gamma: float = Field(0.1, ge=0, description="weight of inference cost C")
    rho: float = Field(0.25, ge=0, description="weight of extrinsic merit E")
    # delta >= 0 with exp(.) > 0 keeps the denominator positive.
    delta: float = Field(0.0, ge=0, description="additive term in the denominator")


def perfics_score(
    baseline: float,
    improvement: float,
    extrinsic: float,
    cost: float,
    weights: PerficsWeights = PerficsWeights(),  # noqa: B008 - frozen, safe as a default
) -> float:
    """Psi for one (model, device class, refinement) option; higher is better."""
    if not 0.0 <= extrinsic <= 1.0:
        raise ValueError(f"extrinsic merit must be in [0, 1], got {extrinsic}")
    if cost < 0:
        raise ValueError(f"cost must be >= 0, got {cost}")
    for name, value in (("baseline", baseline), ("improvement", improvement), ("cost", cost)):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}")
    w = weights
    quality = w.eta * math.exp(w.kappa * (w.alpha * baseline + w.beta * improvement))
    return (quality + w.rho * extrinsic) / (math.exp(w.gamma * cost) + w.delta)


def aggregate_quality(
    per_category: Mapping[str, float], counts: Mapping[str, int] | None = None
) -> float:
    """Combine per-category ``q`` values: equal weights, or weighted by question counts."""
    if not per_category:
        raise ValueError("no categories to aggregate")
    if counts is None:
        return sum(per_category.values()) / len(per_category)
    total = sum(counts.get(category, 0) for category in per_category)
    if total <= 0:
        raise ValueError("question counts must add up to more than zero")
    return sum(q * counts.get(category, 0) for category, q in per_category.items()) / total


def latency_cost(device_time_s: float, latency_budget_s: float) -> float:
    """``C`` for the planner: device time of the standard answer over the latency budget."""
    if latency_budget_s <= 0:
        raise ValueError("latency budget must be positive")
    if device_time_s < 0:
        raise ValueError("device time must be >= 0")
    return device_time_s / latency_budget_s


def memory_cost(peak_memory_bytes: float) -> float:
    """``C`` for the hardware-independent view: peak memory footprint in GB."""
    if peak_memory_bytes < 0:
        raise ValueError("memory must be >= 0")
    return peak_memory_bytes / BYTES_PER_GB
