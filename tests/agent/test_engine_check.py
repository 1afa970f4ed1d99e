"""The engine's smoke check in a child, and what the loaded llama.cpp CPU library contains."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from agent.engine.build import amx_libraries
from agent.engine.smoke import check_engine
from tests.support.faults import crash_on_import

ROOT = Path(__file__).resolve().parents[2]
AMX_MNEMONICS = ("ldtilecfg", "sttilecfg", "tileloadd", "tilestored", "tdpb", "tilerelease")
LOADED_LIBS = (
    "import json; from agent.inference.runtime import engine_facts, loaded_cpu_backends;"
    "engine_facts(); print(json.dumps([str(p) for p in loaded_cpu_backends()]))"
)


def test_the_engine_check_generates_and_names_the_loaded_cpu_library() -> None:
    report = check_engine()
    assert report.ok, report.reason
    assert report.smoke_tokens and report.smoke_tokens > 0
    assert report.cpu_backend and report.cpu_backend.startswith("libggml-cpu")
    assert report.llama_cpp_python and "CPU" in (report.system_info or "")
    assert report.amx_kernels is False


@pytest.mark.parametrize("fault", ["SIGSEGV", "SIGILL"])
def test_an_engine_child_killed_by_a_fault_is_a_named_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    faulty = crash_on_import(tmp_path / "fault", "llama_cpp", fault)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(faulty), str(ROOT)]))
    report = check_engine()
    assert not report.ok and report.crash == fault
    assert report.reason and report.reason.startswith(f"the engine check died: {fault}")
    assert "fix:" in report.reason


@pytest.mark.skipif(platform.machine() != "x86_64", reason="AMX exists on x86-64 only")
def test_no_loaded_cpu_backend_library_contains_amx_tile_instructions() -> None:
    """GCC 12 (Debian 12's) miscompiles AMX tile set-up: no AMX code may be loaded."""
    out = subprocess.run(
        [sys.executable, "-c", LOADED_LIBS], capture_output=True, text=True, check=True
    ).stdout
    libraries = [Path(p) for p in json.loads(out.strip().splitlines()[-1])]
    assert libraries and all(p.name.startswith("libggml-cpu") for p in libraries)
    shipped = sorted(libraries[0].parent.glob("libggml-cpu*.so"))  # every variant of the wheel
    for library in {*libraries, *shipped}:
        listing = subprocess.run(
            ["objdump", "-d", "--no-show-raw-insn", str(library)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        found = sorted({m for m in AMX_MNEMONICS if f"\t{m}" in listing or f" {m} " in listing})
        assert found == [], f"{library.name} holds AMX instructions: {found}"
    assert amx_libraries({p.name: p.read_bytes() for p in {*libraries, *shipped}}) == []
