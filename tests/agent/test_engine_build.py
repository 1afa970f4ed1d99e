"""The engine build: keyed wheels, never another build's wheel, and no AMX code loaded."""

from __future__ import annotations

import platform
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from agent.engine import build
from agent.engine.build import BuildSpec, EngineBuildError, amx_libraries, spec_for

AMX_ASSEMBLY = """
ldtilecfg (%rdi)
tileloadd (%rsi,%rdx,1), %tmm0
tdpbssd %tmm1, %tmm2, %tmm0
tilestored %tmm0, (%r8,%rdx,1)
tilerelease
"""
AVX2_ASSEMBLY = """
vpdpbusd %ymm1, %ymm2, %ymm0
vfmadd231ps %ymm1, %ymm2, %ymm0
vpbroadcastb (%rdi), %ymm3
vmovdqu (%rsi,%rdx,1), %ymm4
"""


def test_a_change_of_flags_compiler_or_version_gives_another_key() -> None:
    base = spec_for("portable", compiler="c++ (Debian 12.2.0-14) 12.2.0")
    variants = [
        spec_for("native", compiler=base.compiler),
        spec_for("portable", compiler="c++ (Debian 13.3.0-1) 13.3.0"),
        BuildSpec(**{**base.__dict__, "version": "0.3.37"}),
        BuildSpec(**{**base.__dict__, "cmake_args": (*base.cmake_args, "-DGGML_AMX_TILE=ON")}),
    ]
    keys = {base.key, *(spec.key for spec in variants)}
    assert len(keys) == 5
    assert spec_for("portable", compiler=base.compiler).key == base.key  # stable


def _fake_wheel(directory: Path) -> Path:
    """An installable llama_cpp_python wheel (a marker module instead of llama.cpp)."""
    directory.mkdir(parents=True)
    version = build.LLAMA_CPP_PYTHON_VERSION
    path = directory / f"llama_cpp_python-{version}-py3-none-any.whl"
    info = f"llama_cpp_python-{version}.dist-info"
    files = {
        "llama_cpp_marker/__init__.py": f"BUILT_IN = {directory.name!r}\n",
        "llama_cpp_marker/lib/libllama.so": directory.name,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: llama_cpp_python\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{name},,\n" for name in files) + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
        archive.writestr(f"{info}/RECORD", record)
    return path


def test_install_takes_only_the_wheel_of_its_own_key(tmp_path: Path, monkeypatch) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin/python")
    portable = spec_for("portable", compiler="cc 1")
    native = spec_for("native", compiler="cc 1")
    _fake_wheel(tmp_path / "wheels" / native.key)  # a wheel built with other flags
    mine = _fake_wheel(tmp_path / "wheels" / portable.key)

    def refuse_to_build(spec: BuildSpec, target: Path, python: str = "") -> Path:
        raise EngineBuildError(f"would build {spec.key}")

    monkeypatch.setattr(build, "build_wheel", refuse_to_build)
    assert build.install(portable, python, tmp_path / "wheels") == mine
    marker = subprocess.run(
        [python, "-c", "import llama_cpp_marker; print(llama_cpp_marker.BUILT_IN)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert marker == portable.key
    other_flags = spec_for("portable", compiler="cc 2")  # same flags, another compiler
    with pytest.raises(EngineBuildError, match="would build"):
        build.install(other_flags, python, tmp_path / "wheels")


def _assembled(tmp_path: Path, source: str) -> bytes:
    (tmp_path / "code.s").write_text(source)
    subprocess.run(["as", str(tmp_path / "code.s"), "-o", str(tmp_path / "code.o")], check=True)
    subprocess.run(["objcopy", "-O", "binary", "-j", ".text", "code.o", "code.bin"], cwd=tmp_path)
    return (tmp_path / "code.bin").read_bytes()


@pytest.mark.skipif(platform.machine() != "x86_64", reason="AMX exists on x86-64 only")
def test_the_amx_scan_finds_real_tile_instructions_and_not_avx2(tmp_path: Path) -> None:
    amx = _assembled(tmp_path, AMX_ASSEMBLY)
    avx2 = _assembled(tmp_path, AVX2_ASSEMBLY)
    assert amx_libraries({"amx.so": amx, "avx2.so": avx2}) == ["amx.so"]
