"""Fixtures for fault tests: a real controller process that can be killed and restarted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.controller_process import ControllerProcess


@pytest.fixture
def controller(tmp_path: Path) -> Iterator[ControllerProcess]:
    """``controller run`` at its defaults (Mosquitto when installed), stopped afterwards."""
    process = ControllerProcess(tmp_path).start()
    yield process
    process.stop()
