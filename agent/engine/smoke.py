"""The engine's smoke check: a real generation in a child process, and how it went.

A llama.cpp built for the wrong CPU (or with miscompiled AMX kernels) does not
raise: it kills the process with SIGILL or SIGSEGV. So the check runs where a
crash costs nothing, a child (``python -m agent.engine.smoke``), which writes a
tiny model, loads it, generates a few tokens and prints the
engine's build facts as JSON. The parent names a crash (:mod:`agent.engine.crash`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agent.engine.crash import Crash, name_exit, oom_kills
from shared.messages import EngineReport

SMOKE_TOKENS = 8
DEFAULT_TIMEOUT_S = 180.0
"""Python start, imports and a tiny model's load take seconds; a Pi Zero on a busy
SD card can take a minute. Generous: a hung engine is named, never waited on forever."""


def check_engine(*, threads: int = 1, timeout_s: float = DEFAULT_TIMEOUT_S) -> EngineReport:
    """Run the smoke generation in a child; the report says whether and how it failed."""
    command = [sys.executable, "-P", "-m", "agent.engine.smoke", "--threads", str(threads)]
    before = oom_kills()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return _died(name_exit(0, timeout_s=timeout_s))
    if done.returncode < 0:
        return _died(name_exit(done.returncode, oom_killed=oom_kills() > before))
    try:
        return EngineReport.model_validate_json(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        tail = (done.stderr or done.stdout).strip()[-300:]
        return EngineReport(ok=False, reason=f"the engine check printed no report: {tail}")


def _died(crash: Crash | None) -> EngineReport:
    assert crash is not None  # a signal or a timeout always has a name
    return EngineReport(ok=False, crash=crash.how, reason=crash.describe("the engine check"))


def _smoke(threads: int) -> EngineReport:
    """In the child: load, generate, report (a crash here is the finding)."""
    from agent.engine.tiny_gguf import TinyModelSpec, write_tiny_gguf
    from agent.inference.runtime import InferenceError, ModelRuntime, engine_facts

    with tempfile.TemporaryDirectory(prefix="edgefleet-smoke-") as tmp:
        # large enough that matrix products take the quantized kernels (AMX's included)
        spec = TinyModelSpec(n_embd=256, n_ff=512, n_layers=2)
        model = write_tiny_gguf(Path(tmp) / "smoke.gguf", spec)
        facts = engine_facts()
        try:
            runtime = ModelRuntime(model, threads=threads, n_ctx=256)
            started = time.perf_counter()
            generation = runtime.complete("The engine", max_tokens=SMOKE_TOKENS)
            seconds = time.perf_counter() - started
            runtime.close()
        except InferenceError as exc:
            return EngineReport(
                ok=False, reason=f"the engine could not run a model: {exc}", **facts
            )
    return EngineReport(
        ok=generation.generated_tokens > 0,
        reason=None if generation.generated_tokens else "the engine generated no tokens",
        smoke_tokens=generation.generated_tokens,
        smoke_seconds=seconds,
        **facts,
    )


def main(argv: list[str] | None = None) -> int:
    """Child entry point: print one JSON line with the report (a failure is in the report)."""
    parser = argparse.ArgumentParser(prog="python -m agent.engine.smoke")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    report = _smoke(args.threads)
    sys.stdout.write(json.dumps(report.model_dump(mode="json")) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
