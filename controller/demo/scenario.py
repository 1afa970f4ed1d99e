"""The fleet demo's steps, each through the controller's API or a device's chat API.

Import the two demo models, enroll two devices of different classes, have
each benchmark the models that fit it (the bigger class with a judge and a
reference model, so quality is a fraction of the reference's) on judged
questions and on a verifiable multiple-choice suite, read the PeRFICS
leaderboard, apply a plan, wait for its rollout, and ask every device a
question, with self-refinement on or off as its plan chose.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from controller.demo.judging import all_graded, judging
from controller.demo.local_fleet import API_TIMEOUT_S, LocalFleet
from controller.demo.report import DemoReport
from shared.quality import wilson

JUDGE = REFERENCE = "gemma3-270m-q4_k_m"
"""Gemma-3-270M, the fleet's biggest model, grades (by digit probabilities: it is a base
model) and is the reference whose judged answers count as q = 1."""
DEVICES = {"pizero-01": "pizero2w-512mb", "pi4-01": "pi4-4gb"}
"""A box where only SmolLM2 fits (300 MB budget) and one where both models do."""
BENCH_CATEGORIES = ["knowledge"]
"""Short factual questions with exact answers: quick to generate, to judge and to check."""
DEFAULT_QUESTION = "Give three simple ways to keep drinking water safe at home."
CHOICE_SUITE = "everyday-choice"
"""Built-in multiple choice, scored by log-likelihood: no judge needed, and prefill only."""
CHOICE_CHANCE = 0.25
"""Four choices per item: what guessing scores."""
FINAL_ACKS = {"ok", "error"}
NOISY_BELOW = 10
"""Fewer judged questions than this per option: quality is noise-level, say so."""


def engine_label(engine: dict[str, Any] | None) -> str:
    """The device's engine check in a few words: the CPU variant loaded, or how it died."""
    if not engine:
        return "not checked"
    if not engine.get("ok"):
        return f"broken: {engine.get('crash') or engine.get('reason') or 'see the agent log'}"
    backend = str(engine.get("cpu_backend") or "")
    return backend.removeprefix("libggml-cpu-").removesuffix(".so") or "ok"


class DemoError(RuntimeError):
    """A step failed in a way the user can act on; the message says what to do."""


@dataclass(frozen=True)
class DemoOptions:
    """How much the demo measures and asks."""

    question: str = DEFAULT_QUESTION
    max_questions: int = 2
    choice_items: int = 108
    max_tokens: int = 96
    controller_start_s: float = 90.0
    devices_online_s: float = 120.0
    bench_timeout_s: float = 900.0
    judging_timeout_s: float = 300.0
    """The controller's next grade pass (every 10 s) and one judge step on the pi4: load the
    judge, grade the zero's judged answers and the reference's beside them, fewer than the
    pi4's own bench generates and grades."""
    rollout_timeout_s: float = 300.0
    chat_timeout_s: float = 300.0


StepDone = Callable[[str, float], None]


class FleetDemo:
    """Runs the steps against a started :class:`LocalFleet` and fills a :class:`DemoReport`."""

    def __init__(
        self, fleet: LocalFleet, models: dict[str, Path], options: DemoOptions, done: StepDone
    ) -> None:
        self.fleet, self.models, self.options, self.done = fleet, models, options, done
        self.report = DemoReport()
        self.operator: httpx.Client | None = None
        self.operator_token = ""
        """The operator token's secret, for the dashboard hint (never in the report)."""
        self.fits: dict[str, dict[str, bool]] = {}

    @property
    def api(self) -> httpx.Client:
        """The operator's API client (created by the first step)."""
        assert self.operator is not None, "the controller step creates the operator token"
        return self.operator

    def run(self) -> DemoReport:
        """Every step in order; each one's wall-clock time goes into the report."""
        steps: list[tuple[str, Callable[[], None]]] = [
            ("controller up, operator token", self._controller),
            ("demo models imported", self._import_models),
            ("devices enrolled and online", self._enroll),
            ("models benchmarked on the devices", self._bench),
            ("judged answers graded", self._await_judging),
            ("plan applied and rolled out", self._plan),
            ("devices answered", self._ask),
            ("answered through the gateway", self._ask_gateway),
        ]
        for name, step in steps:
            started = time.monotonic()
            step()
            self.report.timings_s[name] = round(time.monotonic() - started, 2)
            self.done(name, self.report.timings_s[name])
        self.report.caveats = caveats(self.report)
        return self.report

    def _controller(self) -> None:
        self.fleet.wait(
            self.fleet.healthy, self.options.controller_start_s, "the controller's /healthz"
        )
        created = self.fleet.api.post("/tokens", json={"name": "demo-operator", "role": "operator"})
        _expect(created, 201, "creating the operator token")
        self.operator_token = created.json()["token"]
        self.operator = self.fleet.client(self.operator_token)
        key = self.fleet.api.post("/tokens", json={"name": "demo-chat", "role": "client"})
        _expect(key, 201, "creating the chat client key")
        self.report.gateway = {
            "url": self.fleet.url,
            "chat_page": f"{self.fleet.url}/chat/",
            "client_key": key.json()["token"],
        }

    def _import_models(self) -> None:
        for model_id, path in self.models.items():
            body = {"id": model_id, "path": str(path), "name": path.name}
            _expect(self.fleet.api.post("/models", json=body), 201, f"importing {model_id}")
            detail = self.api.get(f"/models/{model_id}").json()
            self.fits[model_id] = {c: f["fits"] for c, f in detail["memory_by_class"].items()}

    def _enroll(self) -> None:
        classes = {c["name"]: c for c in self.api.get("/classes").json()}
        for device_id, device_class in DEVICES.items():
            password = self.fleet.enroll_device(device_id, device_class, self.api)
            self.fleet.start_agent(device_id, device_class, password)
            budgets = _budgets(classes[device_class])
            self.report.devices[device_id] = {"device_class": device_class, **budgets}
        self.fleet.wait(
            lambda: self.fleet.online(set(DEVICES)),
            self.options.devices_online_s,
            "both devices online",
        )
        self._record_devices()  # each device's engine check, before it is asked to work

    def _bench(self) -> None:
        sent = [self._send_bench(device_id, cls) for device_id, cls in DEVICES.items()]
        sent += [self._send_choice_bench(device_id, cls) for device_id, cls in DEVICES.items()]
        for bench in sent:
            command_id = str(bench["command_id"])
            final = self.fleet.wait(
                partial(_final, self.api, command_id),
                self.options.bench_timeout_s,
                f"the bench on {bench['device_id']}",
            )
            bench.update(status=final["status"], reason=final["reason"])
        self.report.benches = sent
        if all(b["status"] != "ok" for b in self.report.benches):
            raise DemoError("every benchmark failed (see the reasons above)")
        self._record_accuracy()

    def _await_judging(self) -> None:
        """Wait (bounded) until the judge steps graded what a class without the judge answered.

        Past the bound the demo goes on: the summary names the ungraded answers and why.
        """
        deadline = time.monotonic() + self.options.judging_timeout_s

        def settled() -> list[dict[str, Any]] | None:
            entries = judging(self.api, self.report.benches, self.report.devices)
            return entries if all_graded(entries) or time.monotonic() >= deadline else None

        self.report.judging = self.fleet.wait(
            settled,
            self.options.judging_timeout_s + API_TIMEOUT_S,  # the probe past the deadline
            "the judge steps",
        )

    def _send_choice_bench(self, device_id: str, device_class: str) -> dict[str, Any]:
        command: dict[str, Any] = {
            "type": "bench",
            "model_ids": [m for m in self.models if self.fits[m].get(device_class)],
            "suite_id": CHOICE_SUITE,
            "max_questions": self.options.choice_items,
            "refine": False,  # choices are scored, not generated: nothing to refine
        }
        if self.fits[REFERENCE].get(device_class):
            command.update(judge_model_id=JUDGE, reference_model_id=REFERENCE)
        command_id = self.fleet.send(device_id, command, self.api)
        return {"device_id": device_id, "command_id": command_id, **command}

    def _record_accuracy(self) -> None:
        """Choice accuracy per device and model, with a Wilson interval, from per-category rows."""
        rows = self.api.get("/bench/results", params={"refined": "false", "limit": 500}).json()
        counts: dict[tuple[str, str], list[int]] = {}
        for row in rows["items"]:
            if row["type"] == "choice" and row["exact_accuracy"] is not None:
                k_n = counts.setdefault((row["device_id"], row["model_id"]), [0, 0])
                k_n[0] += round(row["exact_accuracy"] * row["n"])
                k_n[1] += row["n"]
        for (device_id, model_id), (k, n) in sorted(counts.items()):
            low, high = wilson(k, n, 0.95)
            self.report.accuracy.setdefault(device_id, {})[model_id] = {
                "suite": CHOICE_SUITE, "k": k, "n": n, "acc": k / n, "low": low, "high": high
            }  # fmt: skip

    def _send_bench(self, device_id: str, device_class: str) -> dict[str, Any]:
        fitting = [m for m in self.models if self.fits[m].get(device_class)]
        command: dict[str, Any] = {
            "type": "bench",
            "model_ids": fitting,
            "categories": BENCH_CATEGORIES,
            "max_questions": self.options.max_questions,
            "refine": True,
        }
        if self.fits[JUDGE].get(device_class) and self.fits[REFERENCE].get(device_class):
            command.update(judge_model_id=JUDGE, reference_model_id=REFERENCE)
        command_id = self.fleet.send(device_id, command, self.api)
        return {"device_id": device_id, "command_id": command_id, **command}

    def _plan(self) -> None:
        scores = self.api.get("/scores").json()
        self.report.scores, self.report.weights = scores["classes"], scores["weights"]
        applied = self.api.post("/plans", json={})
        _expect(applied, 202, "applying a plan")
        plan_id = applied.json()["plan"]["id"]
        self.fleet.wait(
            lambda: self._rollout_state(plan_id) != "running",
            self.options.rollout_timeout_s,
            f"plan {plan_id}'s rollout",
        )
        detail = self.api.get(f"/plans/{plan_id}").json()
        plan = detail["plan"]
        self.report.plan = {
            "id": plan_id,
            "status": plan["status"],
            "state": plan["params"]["rollout"]["state"],
            "summary": plan["summary"],
            "reasons": plan["reasons"],
            "assignments": {a["device_id"]: _assignment(a) for a in detail["assignments"]},
        }
        self._record_devices()

    def _rollout_state(self, plan_id: int) -> str:
        return str(self.api.get(f"/plans/{plan_id}").json()["plan"]["params"]["rollout"]["state"])

    def _record_devices(self) -> None:
        for device in self.api.get("/devices").json()["items"]:
            if device["id"] in self.report.devices:
                self.report.devices[device["id"]].update(
                    status=device["status"],
                    model_id=device["model_id"],
                    refine=bool(device.get("refine")),
                    strategy=device.get("strategy"),
                    arch=device["arch"],
                    engine=engine_label(device.get("engine")),
                )

    def _ask(self) -> None:
        serving = [d for d, info in self.report.devices.items() if info.get("model_id")]
        if not serving:
            raise DemoError("no device serves a model after the plan (see its reasons above)")
        with ThreadPoolExecutor(max_workers=len(serving)) as pool:
            answers = dict(zip(serving, pool.map(self._ask_one, serving), strict=True))
        self.report.answers = answers

    def _ask_one(self, device_id: str) -> dict[str, Any]:
        body = {
            "messages": [{"role": "user", "content": self.options.question}],
            "max_tokens": self.options.max_tokens,
            "refine": self.report.devices[device_id]["refine"],
            "strategy": self.report.devices[device_id].get("strategy"),  # as the plan chose
        }
        started = time.monotonic()
        reply = self.fleet.chat(device_id, body, timeout=self.options.chat_timeout_s)
        return self._answer(reply, started)

    def _ask_gateway(self) -> None:
        """One question to the fleet's single address, as an end user's OpenAI client asks."""
        assert self.report.gateway is not None, "the controller step creates the client key"
        body = {
            "model": "auto",
            "messages": [{"role": "user", "content": self.options.question}],
            "max_tokens": self.options.max_tokens,
        }
        started = time.monotonic()
        reply = httpx.post(
            f"{self.report.gateway['url']}/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {self.report.gateway['client_key']}"},
            timeout=self.options.chat_timeout_s,
        )
        _expect(reply, 200, "asking through the gateway")
        self.report.gateway_answer = self._answer(reply.json(), started)

    def _answer(self, reply: dict[str, Any], started: float) -> dict[str, Any]:
        """A chat reply as the report keeps it: text, model, tokens and the device's timings."""
        return {
            "question": self.options.question,
            "model": reply["model"],
            "answer": reply["choices"][0]["message"]["content"],
            "completion_tokens": reply["usage"]["completion_tokens"],
            "round_trip_s": round(time.monotonic() - started, 2),
            **reply["edgefleet"],
        }


def _expect(response: httpx.Response, status: int, what: str) -> None:
    if response.status_code != status:
        raise DemoError(f"{what}: HTTP {response.status_code}: {response.text}")


def _final(api: httpx.Client, command_id: str) -> dict[str, Any] | None:
    """The command's last ack once it is ``ok`` or ``error``, else None."""
    detail = api.get(f"/commands/{command_id}").json()
    final = [a for a in detail["acks"] if a["status"] in FINAL_ACKS]
    return {"status": final[-1]["status"], "reason": detail.get("reason")} if final else None


def _budgets(device_class: dict[str, Any]) -> dict[str, Any]:
    keys = ("memory_budget_mb", "latency_budget_s", "n_ctx", "threads", "kv_cache_type")
    return {key: device_class[key] for key in keys}


def _assignment(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("device_class", "model_id", "refine", "strategy", "score", "status", "reasons")
    return {key: row[key] for key in keys}


def caveats(report: DemoReport) -> list[str]:
    """One line per thing the reader should not over-read: failures, missing or noisy quality."""
    notes = [
        f"the bench on {b['device_id']} failed: {b['reason']}"
        for b in report.benches
        if b.get("status") != "ok"
    ]
    notes.extend(
        f"{j['answers'] - j['graded']} of {j['answers']} judged answer(s) of {j['device_id']} "
        f"({j['device_class']}) were still ungraded when the demo read the scores: {j['pending']}"
        for j in report.judging
        if j["graded"] < j["answers"]
    )
    rows = [row for rows in report.scores.values() for row in rows]
    if not rows:
        notes.append(
            "no quality was measured (no judged answer against the reference), so the "
            "leaderboard is empty and the plan has nothing to choose from"
        )
    elif min(row["n_questions"] for row in rows) < NOISY_BELOW:
        fewest = min(row["n_questions"] for row in rows)
        notes.append(
            f"B and I rest on as few as {fewest} scored item(s), the judged ones graded by a 270M "
            "base model, a weak judge: read them as noisy signals, not as a verdict on the models"
        )
    notes.extend(_accuracy_notes(report))
    state = report.plan.get("state")
    if state not in (None, "done"):
        notes.append(f"the plan's rollout ended {state}: {report.plan.get('reasons')}")
    return notes


def _accuracy_notes(report: DemoReport) -> list[str]:
    """What the verifiable suite's accuracies can and cannot tell."""
    results = [(d, m, a) for d, models in report.accuracy.items() for m, a in models.items()]
    notes = [
        f"{m} on {d}: {100 * a['acc']:.0f}% of {a['n']} choice items "
        f"[{100 * a['low']:.0f}, {100 * a['high']:.0f}]%, "
        + ("above" if a["low"] > CHOICE_CHANCE else "not distinguishable from")
        + f" guessing ({100 * CHOICE_CHANCE:.0f}%)"
        for d, m, a in results
    ]
    by_model: dict[str, list[dict[str, Any]]] = {}
    for _, model_id, acc in results:
        by_model.setdefault(model_id, []).append(acc)
    best = {m: max(accs, key=lambda a: a["n"]) for m, accs in by_model.items()}
    if len(best) == 2:
        (m1, a1), (m2, a2) = best.items()
        overlap = a1["low"] <= a2["high"] and a2["low"] <= a1["high"]
        verdict = "do not separate the two models" if overlap else "separate the two models"
        notes.append(f"the choice intervals of {m1} and {m2} {verdict} on this suite")
    if results:
        notes.append(
            "what these numbers cannot tell: how well a model answers your own questions "
            "(upload a suite of them), or anything finer than their intervals"
        )
    return notes
