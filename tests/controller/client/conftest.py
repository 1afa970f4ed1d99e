"""CLI fixtures: a real controller on uvicorn whose fleet reported over a real Mosquitto, and
the real ``edgefleet`` root command run against it over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from shared.cli import build_app
from tests.controller.web.fleet import Dashboard, reported_fleet


@dataclass
class Result:
    """What one command printed and its exit code."""

    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """stdout as JSON."""
        return json.loads(self.stdout)


@dataclass
class Cli:
    """Runs ``edgefleet ...`` as a role against the fleet's controller."""

    fleet: Dashboard

    def __call__(self, role: str | None, *args: str, url: str | None = None) -> Result:
        """In-process through the root command (the entry points the package registers)."""
        argv = [*args, "--url", url or self.fleet.api.url]
        if role:
            argv += ["--token", self.fleet.api.tokens[role]]
        result = CliRunner().invoke(build_app(argv), argv, env={"EDGEFLEET_TOKEN": None})
        return Result(result.exit_code, result.stdout, result.stderr)

    def process(self, *args: str, env: dict[str, str]) -> Result:
        """As a separate ``python -m shared.cli`` process, as an operator's shell runs it."""
        done = subprocess.run(
            [sys.executable, "-m", "shared.cli", *args],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return Result(done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def fleet(
    tmp_path_factory: pytest.TempPathFactory, tiny_gguf_factory: Callable[..., Path]
) -> Iterator[Dashboard]:
    """A controller with models, devices that reported and a benchmark per class."""
    with reported_fleet(tmp_path_factory.mktemp("cli"), tiny_gguf_factory) as running:
        yield running


@pytest.fixture
def cli(fleet: Dashboard) -> Cli:
    """The ``edgefleet`` command against the fleet."""
    return Cli(fleet)
