"""``edgefleet demo fleet`` as a user runs it: a real subprocess, the real demo models.

The full run keeps the fleet up (``--keep-running``), so the test also signs in to the
dashboard's API with the printed token, then stops it with Ctrl-C (SIGINT) and checks
that no process of the fleet is left. The quick cases check the clear errors (models
missing, port busy, data dir not empty) and a Ctrl-C in the middle of the benchmarks.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from playwright.sync_api import Browser, expect

from controller.demo.local_fleet import API_TIMEOUT_S
from controller.demo.processes import KILL_WAIT_S, STOP_TIMEOUT_S
from controller.demo.scenario import DEVICES, JUDGE, REFERENCE, DemoOptions
from shared.demo_models import DEMO_MODELS
from tests.support.browser import ARTIFACTS

ROOT = Path(__file__).resolve().parents[2]
SMOLLM2, GEMMA3 = "smollm2-135m-instruct-q4_1", "gemma3-270m-q4_k_m"
MEMORY_MARGIN = 1.1
"""The planner's margin on a model's memory need (docs/planner.md)."""
# Time limits follow from what the demo itself waits for, so on a busy machine the demo
# fails first, with its own message, and a slow but working demo is not failed.
START_S = 30.0
"""Python starting the demo and importing the controller (seconds on a loaded 2-core box)."""
OPTIONS = DemoOptions()
ONLINE_BOUND_S = (
    START_S
    + OPTIONS.controller_start_s
    + API_TIMEOUT_S * len(DEMO_MODELS)  # each import is one API call
    + OPTIONS.devices_online_s
)
DASHBOARD_BOUND_S = (
    ONLINE_BOUND_S
    + OPTIONS.bench_timeout_s * len(DEVICES)  # waited for one after the other
    + OPTIONS.judging_timeout_s
    + API_TIMEOUT_S  # its last look past that bound
    + OPTIONS.rollout_timeout_s
    + OPTIONS.chat_timeout_s  # the devices are asked in parallel
)
STOP_BOUND_S = (len(DEVICES) + 1) * (STOP_TIMEOUT_S + KILL_WAIT_S) + START_S
"""Every agent and the controller stopped one after the other, each killed if it hangs."""


def _hears_ctrl_c() -> None:
    """Ctrl-C (SIGINT) reaches the demo even when the suite runs in the background: a
    shell starts background jobs with SIGINT ignored, and the child would inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class DemoRun:
    """``python -m shared.cli demo fleet ARGS`` with its output read line by line."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "shared.cli", "demo", "fleet", *args],
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=_hears_ctrl_c,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            self._queue.put(line)
        self._queue.put(None)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for_line(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            if match := re.search(pattern, line):
                return match
        raise AssertionError(f"no line matching {pattern!r}; output:\n{self.output}")

    def finish(self, timeout: float) -> int:
        code = self.process.wait(timeout=timeout)
        time.sleep(0.2)  # let the reader take the last lines
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()  # its children get SIGTERM from the kernel (PDEATHSIG)
                self.process.wait()


@pytest.fixture
def runs() -> Iterator[list[DemoRun]]:
    """Demo runs a test starts; any still running at the end is interrupted."""
    started: list[DemoRun] = []
    yield started
    for run in started:
        run.kill()


def _fleet_processes(data_dir: Path) -> list[str]:
    """Processes that belong to the fleet in ``data_dir``: agents (config path) and controller."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "environ"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        environ = proc.info["environ"] or {}
        in_dir = str(data_dir) in cmdline or str(data_dir) in environ.get(
            "EDGEFLEET_CONTROLLER_DATA_DIR", ""
        )
        if in_dir and proc.pid != os.getpid():
            found.append(f"{proc.pid} {cmdline}")
    return found


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_demo_fleet_without_the_models_says_how_to_fetch_them(
    tmp_path: Path, runs: list[DemoRun]
) -> None:
    runs.append(DemoRun("--api-port", "0", env={"EDGEFLEET_MODELS_DIR": str(tmp_path)}))
    assert runs[0].finish(60) == 1
    assert "edgefleet models fetch-demo" in runs[0].output
    assert str(tmp_path / DEMO_MODELS[SMOLLM2].filename) in runs[0].output.replace("\n", "")


def test_demo_fleet_refuses_a_busy_port_and_a_used_data_dir(
    tmp_path: Path, runs: list[DemoRun], smollm2_path: Path, gemma3_path: Path
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        runs.append(DemoRun("--api-port", str(port)))
        assert runs[-1].finish(60) == 1
    assert f"port {port} is already in use" in runs[-1].output
    assert "--api-port" in runs[-1].output

    used = tmp_path / "used"
    used.mkdir()
    (used / "controller.db").write_text("someone's data")
    runs.append(DemoRun("--api-port", "0", "--data-dir", str(used)))
    assert runs[-1].finish(60) == 1
    assert "is not empty" in runs[-1].output
    assert (used / "controller.db").read_text() == "someone's data"


@pytest.mark.slow
def test_demo_fleet_interrupted_while_benchmarking_stops_every_process(
    tmp_path: Path, runs: list[DemoRun], smollm2_path: Path, gemma3_path: Path
) -> None:
    data_dir = tmp_path / "fleet"
    runs.append(DemoRun("--api-port", "0", "--data-dir", str(data_dir)))
    runs[0].wait_for_line(r"done devices enrolled and online", ONLINE_BOUND_S)
    time.sleep(3)  # the benches are running: each agent has a worker process of its own
    assert len(_fleet_processes(data_dir)) >= 3, runs[0].output

    runs[0].process.send_signal(signal.SIGINT)
    assert runs[0].finish(STOP_BOUND_S) == 130, runs[0].output
    assert "did not stop" not in runs[0].output  # stopped on SIGTERM (benches too), not killed
    assert "interrupted" in runs[0].output
    assert _fleet_processes(data_dir) == []


@pytest.mark.slow
@pytest.mark.timeout(DASHBOARD_BOUND_S + STOP_BOUND_S + 120)  # + the checks in between
def test_demo_fleet_plans_a_feasible_model_per_device_and_each_answers(
    tmp_path: Path,
    runs: list[DemoRun],
    smollm2_path: Path,
    gemma3_path: Path,
    browser: Browser,
) -> None:
    data_dir, summary = tmp_path / "fleet", tmp_path / "summary.json"
    args = ("--api-port", "0", "--data-dir", str(data_dir), "--json", str(summary))
    runs.append(DemoRun(*args, "--keep-running"))
    shown = runs[0].wait_for_line(
        r"dashboard: (\S+) \(sign in with the operator token (\S+)\)", DASHBOARD_BOUND_S
    )
    url, token = shown.group(1), shown.group(2)
    report = json.loads(summary.read_text())

    _assert_benches_and_scores(report)
    _assert_plan_is_feasible(report)
    _assert_every_device_answered(report)
    assert report["dashboard"] == {"url": url}
    _assert_the_gateway_answers_with_the_client_key(report, url)
    page = httpx.get(url, timeout=10)
    assert page.status_code == 200 and "<html" in page.text.lower()
    me = httpx.get(
        url.replace("/dashboard/", "/api/v1/me"), headers={"Authorization": f"Bearer {token}"}
    )
    assert me.json() == {"name": "demo-operator", "role": "operator"}
    for title in (
        "PeRFICS leaderboard, class pi4-4gb",
        "PeRFICS leaderboard, class pizero2w-512mb",
    ):
        assert title in runs[0].output
    assert "Verifiable quality: multiple choice" in runs[0].output
    assert "caveat: what these numbers cannot tell" in runs[0].output
    _assert_dashboard_and_cli_see_the_fleet(browser, url, token)

    port = int(url.split(":")[2].split("/")[0])
    runs[0].process.send_signal(signal.SIGINT)
    assert runs[0].finish(STOP_BOUND_S) == 0, runs[0].output  # Ctrl-C ends --keep-running
    assert _fleet_processes(data_dir) == [] and not _listening(port)


def _assert_dashboard_and_cli_see_the_fleet(browser: Browser, url: str, token: str) -> None:
    """The device and quality pages in Chromium, and `edgefleet devices list` over HTTP."""
    shots = ARTIFACTS / "dashboard"
    shots.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(url)
        page.get_by_label("API token").fill(token)
        page.get_by_role("button", name="Sign in").click()
        page.locator("#devices a", has_text="pi4-01").click()
        page.wait_for_selector("#chart-load circle.point")  # heartbeats since the demo began
        expect(page.locator("#device-bench tbody tr")).not_to_have_count(0)
        page.screenshot(path=str(shots / "demo-device.png"), full_page=True)
        page.goto(f"{url}#/quality")
        for device_class in set(DEVICES.values()):
            points = page.locator(f"figure[data-class='{device_class}'] .point")
            expect(points).not_to_have_count(0)
        page.screenshot(path=str(shots / "demo-quality.png"), full_page=True)
    finally:
        context.close()
    listed = subprocess.run(
        [sys.executable, "-m", "shared.cli", "devices", "list", "--json"],
        env={**os.environ, "EDGEFLEET_URL": url.removesuffix("/dashboard/"),
             "EDGEFLEET_TOKEN": token},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert {d["id"] for d in json.loads(listed.stdout)} == set(DEVICES)


def _assert_benches_and_scores(report: dict[str, Any]) -> None:
    assert {b["status"] for b in report["benches"]} == {"ok"}
    choice = {b["device_id"]: b for b in report["benches"] if b.get("suite_id")}
    assert set(choice) == set(DEVICES) and choice["pizero-01"]["model_ids"] == [SMOLLM2]
    for models in report["accuracy"].values():
        for accuracy in models.values():
            assert accuracy["n"] == 108 and accuracy["low"] <= accuracy["acc"] <= accuracy["high"]
    assert set(report["accuracy"]) == set(DEVICES)
    benches = {b["device_id"]: b for b in report["benches"] if not b.get("suite_id")}
    assert set(benches) == set(DEVICES)
    pi4, zero = benches["pi4-01"], benches["pizero-01"]
    assert (pi4["judge_model_id"], pi4["reference_model_id"]) == (JUDGE, REFERENCE)
    assert set(pi4["model_ids"]) == set(DEMO_MODELS)
    assert zero["model_ids"] == [SMOLLM2] and "judge_model_id" not in zero  # Gemma does not fit

    big = {(r["model_id"], r["refine"]): r for r in report["scores"]["pi4-4gb"]}
    assert {model for model, _ in big} == set(DEMO_MODELS)
    assert all(r["n_questions"] >= 1 and not r["quality_pooled"] for r in big.values())
    assert big[(REFERENCE, False)]["B"] == pytest.approx(1.0, abs=0.01)  # the reference is q = 1
    assert big[(SMOLLM2, False)]["B"] > 0
    judging = {j["device_id"]: j for j in report["judging"]}
    assert judging["pi4-01"]["judged_by"] == {"pi4-01": JUDGE}  # in its own bench
    zero_judged = judging["pizero-01"]
    assert zero_judged["judged_by"] == {"pi4-01": JUDGE}, zero_judged  # a judge step on the pi4
    assert zero_judged["graded"] == zero_judged["answers"] > 0 and not zero_judged.get("pending")
    small = {(r["model_id"], r["refine"]): r for r in report["scores"]["pizero2w-512mb"]}
    assert not small[(SMOLLM2, False)]["quality_pooled"]  # its own answers, graded on the pi4
    assert not small[(SMOLLM2, False)]["predicted"]  # but its speed was measured on the zero
    assert small[(GEMMA3, False)]["predicted"] and not small[(GEMMA3, False)]["memory_measured"]


def _assert_the_gateway_answers_with_the_client_key(report: dict[str, Any], url: str) -> None:
    """The report's client key chats with the kept-running fleet, and may do nothing else."""
    gateway = report["gateway"]
    assert gateway["url"] == url.removesuffix("/dashboard/")
    assert gateway["chat_page"] == gateway["url"] + "/chat/"
    served = report["gateway_answer"]
    assert served["device_id"] in DEVICES and served["answer"].strip()
    assert served["model"] == report["plan"]["assignments"][served["device_id"]]["model_id"]
    headers = {"Authorization": f"Bearer {gateway['client_key']}"}
    body = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
    chat = httpx.post(
        f"{gateway['url']}/v1/chat/completions", json=body, headers=headers, timeout=120
    )
    assert chat.status_code == 200, chat.text
    assert httpx.get(f"{gateway['url']}/api/v1/devices", headers=headers).status_code == 403


def _assert_plan_is_feasible(report: dict[str, Any]) -> None:
    plan = report["plan"]
    assert (plan["status"], plan["state"]) == ("applied", "done")
    assert set(plan["assignments"]) == set(DEVICES)
    for device_id, chosen in plan["assignments"].items():
        device = report["devices"][device_id]
        assert chosen["status"] == "ok" and chosen["model_id"] in DEMO_MODELS
        assert device["model_id"] == chosen["model_id"] and device["status"] == "online"
        row = next(
            r
            for r in report["scores"][device["device_class"]]
            if (r["model_id"], r["refine"]) == (chosen["model_id"], chosen["refine"])
        )
        assert row["memory_mb"] * MEMORY_MARGIN <= device["memory_budget_mb"]
        assert row["latency_p95_s"] <= device["latency_budget_s"]
    zero = plan["assignments"]["pizero-01"]
    assert zero["model_id"] == SMOLLM2
    assert any(r.startswith(f"{GEMMA3}: needs") and "budget 0.30 GB" in r for r in zero["reasons"])


def _assert_every_device_answered(report: dict[str, Any]) -> None:
    assert set(report["answers"]) == set(DEVICES)
    for device_id, answer in report["answers"].items():
        assert answer["model"] == report["plan"]["assignments"][device_id]["model_id"]
        assert answer["answer"].strip()
        planned = report["plan"]["assignments"][device_id]["refine"]
        assert (answer["refined"], answer["stages"]) == (planned, 3 if planned else 1) or (
            planned and answer["fell_back"]
        )
        assert 0 < answer["ttft_ms"] <= answer["latency_ms"]
    assert list(report["timings_s"]) == [
        "controller up, operator token",
        "demo models imported",
        "devices enrolled and online",
        "models benchmarked on the devices",
        "judged answers graded",
        "plan applied and rolled out",
        "devices answered",
        "answered through the gateway",
    ]
