"""ControllerRuntime: embedded broker, ingest and the planner loop start and stop in order."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.core.config import ControllerSettings
from controller.runtime import ControllerRuntime
from tests.controller.devices import wait_until

pytestmark = pytest.mark.timeout(60)


def test_runtime_runs_the_planner_loop_without_auto_apply_and_stops_it(tmp_path: Path) -> None:
    settings = ControllerSettings(
        data_dir=tmp_path, dev_mode=True, planner_interval_s=0.1, planner_rollout_timeout_s=42
    )
    runtime = ControllerRuntime(settings).start()
    try:
        assert runtime.broker is not None  # no broker URL: the embedded one
        assert runtime.ingest is not None and runtime.ingest.connection.wait_connected(10)
        planner = runtime.planner
        assert planner is not None and planner.auto_apply is False
        thread = planner._thread
        assert thread is not None and thread.is_alive()
        assert planner.applier is not None
        assert planner.applier.model_url("m1") == "http://127.0.0.1:8000/api/v1/models/m1/file"
        assert planner.applier.config.timeout_s == 42
        assert wait_until(lambda: planner._devices is not None, 10)  # it has stepped
    finally:
        runtime.stop()
    assert not thread.is_alive()


def test_planner_loop_can_be_switched_off(tmp_path: Path) -> None:
    settings = ControllerSettings(data_dir=tmp_path, dev_mode=True, planner_loop=False)
    runtime = ControllerRuntime(settings).start()
    try:
        assert runtime.planner is None
    finally:
        runtime.stop()
