"""Part 2 of bench/planner.py: the planner's plan against three baselines, graded by the truth.

Every strategy assigns each simulated device one option; the grade uses the
hidden truth: a model that does not really fit the device's free memory
serves nothing (Psi 0, every request failed); otherwise each device serves
100 requests with log-normal latency (sigma 0.1) around the true standard
answer time, and its Psi uses the true quality and the true p50.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from bench.planner_sim import SimWorld, build_world
from controller.planner.assign import plan_devices
from controller.planner.filters import ClassView, build_views, device_context, device_rejection
from controller.planner.predict import standard_tokens
from controller.planner.scores import compute_scores
from controller.planner.types import Device, Option, PlannerSettings
from shared.perfics import perfics_score

REQUESTS_PER_DEVICE = 100
Strategy = Callable[
    [SimWorld, dict[str, ClassView], list[Device], np.random.Generator], list[Option | None]
]


def _devices(world: SimWorld, n: int, rng: np.random.Generator) -> list[Device]:
    names = sorted(world.profiles)
    out = []
    for i in range(n):
        c = names[i % len(names)]
        budget = world.profiles[c].memory_budget_mb
        out.append(
            Device(
                f"sim-{i:05d}",
                c,
                arch=world.profiles[c].arch,
                mem_available_mb=budget * float(rng.uniform(0.7, 1.3)),
            )
        )
    return out


def planner(world, views, devices, rng) -> list[Option | None]:
    """The PeRFICS planner (per-device choice)."""
    return [d.option for d in plan_devices(devices, views, world.models, PlannerSettings())]


def _fits(world: SimWorld, device: Device, model_id: str, settings: PlannerSettings) -> bool:
    need = world.models[model_id].memory_estimate_mb[device.device_class]
    need *= 1 + settings.memory_margin_frac
    budget = world.profiles[device.device_class].memory_budget_mb
    return need <= budget and need <= (device.mem_available_mb or math.inf) - 64


def same_everywhere(world, views, devices, rng) -> list[Option | None]:
    """One model for the whole fleet: the largest whose estimate fits every class's budget."""
    s = PlannerSettings()
    ok = [
        m for m in world.models if all(_fits(world, Device("x", c), m, s) for c in world.profiles)
    ]
    model = max(ok, key=lambda m: world.models[m].parameters)
    return [Option(model) for _ in devices]


def largest_fit(world, views, devices, rng) -> list[Option | None]:
    """Resource-fit placement: per device the largest model whose memory fits, no refinement."""
    s = PlannerSettings()
    out: list[Option | None] = []
    for d in sorted(devices, key=lambda x: x.device_id):
        fit = [m for m in world.models if _fits(world, d, m, s)]
        out.append(Option(max(fit, key=lambda m: world.models[m].parameters)) if fit else None)
    return out


def random_feasible(world, views, devices, rng) -> list[Option | None]:
    """A random option among those passing the planner's own filters."""
    out: list[Option | None] = []
    for d in sorted(devices, key=lambda x: x.device_id):
        ctx = device_context(d, [], {})
        ok = [
            s.option
            for s in views[d.device_class].survivors
            if device_rejection(s, ctx, world.models, PlannerSettings()) is None
        ]
        out.append(ok[int(rng.integers(len(ok)))] if ok else None)
    return out


def grade(
    world: SimWorld,
    devices: Sequence[Device],
    options: Sequence[Option | None],
    rng: np.random.Generator,
) -> tuple[float, float, float]:
    """(total true Psi, share of requests within budget, mean true quality of served answers)."""
    s = PlannerSettings()
    total_psi, within, quality = 0.0, 0, []
    for d, o in zip(sorted(devices, key=lambda x: x.device_id), options, strict=True):
        if o is None or world.models[o.model_id].memory_estimate_mb[d.device_class] > (
            d.mem_available_mb or math.inf
        ):
            continue
        p = world.profiles[d.device_class]
        pre, dec = standard_tokens(p, s, strategy=o.strategy)
        key = (o.model_id, d.device_class)
        p50 = pre / world.true_prefill[key] + dec / world.true_decode[key]
        lat = p50 * rng.lognormal(0, 0.1, size=REQUESTS_PER_DEVICE)
        within += int((lat <= p.latency_budget_s).sum())
        q = world.quality[o.model_id]
        b = sum(z for z, _ in q.values()) / len(q) / 100
        i = (sum(r for _, r in q.values()) / len(q) / 100 - b) if o.refine else 0.0
        total_psi += perfics_score(b, i, 0.0, p50 / p.latency_budget_s)
        quality.append(b + i)
    share = within / (REQUESTS_PER_DEVICE * len(devices))
    return total_psi, share, float(np.mean(quality)) if quality else 0.0


STRATEGIES: dict[str, Strategy] = {
    "PeRFICS planner": planner,
    "same model everywhere": same_everywhere,
    "largest model that fits": largest_fit,
    "random feasible": random_feasible,
}


def quality_comparison(n_devices: int, seeds: int) -> None:
    """Print a markdown table: each strategy's mean over ``seeds`` simulated worlds."""
    results: dict[str, list[tuple[float, float, float]]] = {k: [] for k in STRATEGIES}
    for seed in range(seeds):
        world = build_world(seed)
        settings = PlannerSettings()
        scores = compute_scores(world.profiles, world.models, world.runs, settings)
        views = build_views(scores, world.profiles, world.models, settings)
        devices = _devices(world, n_devices, np.random.default_rng(seed))
        for name, strategy in STRATEGIES.items():
            options = strategy(world, views, devices, np.random.default_rng(seed + 100))
            results[name].append(grade(world, devices, options, np.random.default_rng(seed)))
    print(
        f"\n## plan quality: {n_devices} simulated devices over the firmware-config classes, "
        f"mean of {seeds} worlds"
    )
    print("| strategy | total Psi | Psi per device | requests within budget | mean quality (B+I) |")
    print("|---|---:|---:|---:|---:|")
    for name, rows in results.items():
        psi, share, q = (float(np.mean([r[i] for r in rows])) for i in range(3))
        print(f"| {name} | {psi:.0f} | {psi / n_devices:.3f} | {share:.1%} | {q:.3f} |")
