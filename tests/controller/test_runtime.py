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
        assert planner.profiler is None  # auto-profiling is off by default
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


def test_auto_profile_gives_the_loop_a_profiler_with_the_fleet_judge(tmp_path: Path) -> None:
    settings = ControllerSettings(
        data_dir=tmp_path,
        dev_mode=True,
        planner_auto_profile=True,
        planner_profile_interval_s=120,
        judge_model_id="judge",
        reference_model_id="ref",
    )
    runtime = ControllerRuntime(settings).start()
    try:
        planner = runtime.planner
        assert planner is not None and planner.profiler is not None
        assert planner.profile_interval_s == 120
        assert planner.profiler.profiling.reference_model_id == "ref"
        # the first round finds "judge" missing from the registry: logged, the loop goes on
        assert wait_until(lambda: planner._next_profile is not None, 10)
        assert planner._thread is not None and planner._thread.is_alive()
    finally:
        runtime.stop()
