"""Build the llama.cpp engine (llama-cpp-python) on purpose, keyed, and install only that build.

Why: a plain ``pip install llama-cpp-python`` compiles with ``-march=native``. On an
Intel Sapphire Rapids with GCC 12 that turns on AMX, whose ``_tile_loadconfig`` the
compiler miscompiles (the ``asm`` tells it only 8 of the 64 config bytes are read):
SIGSEGV at ``ldtilecfg``. A wheel built on a Pi 5 uses dotprod/fp16 and dies with
SIGILL on a Pi 4. So the fleet build is portable: ``GGML_NATIVE=OFF`` with runtime CPU
dispatch (``GGML_BACKEND_DL`` + ``GGML_CPU_ALL_VARIANTS``: one wheel per architecture,
ggml loads the best CPU variant the box supports), and never an AMX variant: affected
compilers crash on it, and Ollama measured AMX 10.8 % slower on decode anyway (a
Sapphire Rapids then loads the AVX-512 ``icelake`` variant).

pip's wheel cache does not key on ``CMAKE_ARGS``, so a cached wheel built with other
flags would be reused silently. The wheel is therefore built with ``--no-cache-dir``
into a directory named by everything that shapes it (llama-cpp-python version, flags,
source patches, compiler, machine) and installed with ``--no-index --find-links`` that
directory only. Standard library only: it runs before edgefleet is installed::

    python -m agent.engine.build install --python .venv/bin/python
    python -m agent.engine.build wheel            # prints the wheel's path
    python -m agent.engine.build wheelhouse ansible/wheelhouse   # a fleet's offline install
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

LLAMA_CPP_PYTHON_VERSION = "0.3.36"
"""The one pin of the engine's version: everything that installs edgefleet builds this."""

X86_VARIANTS = ("x64", "sse42", "sandybridge", "haswell", "skylakex", "icelake", "alderlake")
"""The x86-64 CPU variants built (Ollama's set: one per common CPU generation).

Upstream also builds ivybridge, piledriver, cannonlake, cascadelake, cooperlake and zen4
(each falls back to one of these at a few % cost, and each adds minutes to a 2-core build)
and sapphirerapids, the AMX variant, which is left out on purpose (see the module text).
"""

PROFILES: dict[str, tuple[str, ...]] = {
    "portable": (
        "-DGGML_NATIVE=OFF",
        "-DGGML_BACKEND_DL=ON",
        "-DGGML_CPU_ALL_VARIANTS=ON",
        "-DLLAVA_BUILD=OFF",  # no image input: the multimodal library is not built
    ),
    "native": ("-DGGML_NATIVE=ON", "-DLLAVA_BUILD=OFF"),
}
"""CMake flags per build; ``native`` exists only to measure the portable build against."""

PATCH_VERSION = 1
"""Bump when the source patches change, so their wheels get a new key."""

AMX_TILE_OPCODE = re.compile(
    rb"\xc4[\x02\x22\x42\x62\x82\xa2\xc2\xe2][\x78\x79\x7a\x7b][\x49\x4b]", re.DOTALL
)
"""ldtilecfg, sttilecfg, tileloadd and tilestored (3-byte VEX, map 0F38, W0, L0): any AMX
code configures and loads tiles, so finding none of these means no AMX code."""

VARIANT_CALL = re.compile(r"\s+ggml_add_cpu_backend_variant\(([\w.]+)")
WHEEL_DIR = Path.home() / ".cache" / "edgefleet" / "wheels"


class EngineBuildError(RuntimeError):
    """The engine could not be built or installed; the message says what to do."""


@dataclass(frozen=True)
class BuildSpec:
    """Everything that shapes the built wheel; its ``key`` names the wheel's directory."""

    version: str
    profile: str
    cmake_args: tuple[str, ...]
    compiler: str
    machine: str

    @property
    def key(self) -> str:
        """``<version>-<profile>-<machine>-<hash>``: readable, and different for any change."""
        fields = json.dumps({**self.__dict__, "patch": PATCH_VERSION}, sort_keys=True)
        digest = hashlib.sha256(fields.encode()).hexdigest()[:12]
        return f"{self.version}-{self.profile}-{self.machine}-{digest}"


def compiler_version(cxx: str | None = None) -> str:
    """The first line of ``c++ --version`` (what CMake will use, honouring $CXX)."""
    command = cxx or os.environ.get("CXX") or "c++"
    try:
        out = subprocess.run([command, "--version"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise EngineBuildError(f"no C++ compiler ({command}): install g++ first ({exc})") from None
    return out.stdout.splitlines()[0].strip()


def spec_for(profile: str = "portable", *, compiler: str | None = None) -> BuildSpec:
    """The build this machine would make for ``profile``."""
    return BuildSpec(
        version=LLAMA_CPP_PYTHON_VERSION,
        profile=profile,
        cmake_args=PROFILES[profile],
        compiler=compiler if compiler is not None else compiler_version(),
        machine=platform.machine(),
    )


def wheel_in(directory: Path) -> Path | None:
    """The llama-cpp-python wheel a key directory holds, if it was built."""
    wheels = sorted(directory.glob("llama_cpp_python-*.whl"))
    return wheels[0] if wheels else None


def amx_libraries(libraries: dict[str, bytes]) -> list[str]:
    """Names of the CPU backend libraries whose bytes contain AMX tile instructions."""
    return [name for name, data in libraries.items() if AMX_TILE_OPCODE.search(data)]


def _patch_variants(ggml_cmake: Path) -> list[str]:
    """Keep only ``X86_VARIANTS`` in ggml's x86 variant list; return every variant name."""
    text = ggml_cmake.read_text()
    start = text.index('if (GGML_SYSTEM_ARCH STREQUAL "x86")\n        ggml_add_cpu_backend_variant')
    end = text.index("elseif", start)
    kept, names = [], []
    for line in text[start:end].splitlines(keepends=True):
        match = VARIANT_CALL.match(line)
        if match and match.group(1) not in X86_VARIANTS:
            continue
        if match:
            names.append(match.group(1))
            if "AMX" in line:
                raise EngineBuildError(f"{ggml_cmake}: variant {names[-1]} now uses AMX")
        kept.append(line)
    if names != list(X86_VARIANTS):
        raise EngineBuildError(f"{ggml_cmake}: the x86 variant list changed upstream ({names})")
    patched = text[:start] + "".join(kept) + text[end:]
    ggml_cmake.write_text(patched)
    return [m.group(1) for m in map(VARIANT_CALL.match, patched.splitlines()) if m]


def _patch_install(top_cmake: Path, variants: list[str]) -> None:
    """llama-cpp-python installs ``ggml-cpu`` only; install each variant library too."""
    text = top_cmake.read_text()
    anchor = "    llama_cpp_python_install_target(ggml-cpu)\n"
    if anchor not in text:
        raise EngineBuildError(f"{top_cmake}: install list changed upstream; re-check the patch")
    loop = f"    foreach(variant {' '.join(variants)})\n"
    loop += "        llama_cpp_python_install_target(ggml-cpu-${variant})\n    endforeach()\n"
    top_cmake.write_text(text.replace(anchor, anchor + loop))


def _source(work: Path, python: str) -> Path:
    """Download and unpack the sdist of the pinned version (sdist only: we compile it)."""
    spec = f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}"
    pip = [python, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
    _run([*pip, "-d", str(work), spec], "download the sdist")
    (archive,) = work.glob("llama_cpp_python-*.tar.gz")
    with tarfile.open(archive) as tar:
        tar.extractall(work, filter="data")
    return work / archive.name.removesuffix(".tar.gz")


def build_wheel(spec: BuildSpec, target: Path, python: str = sys.executable) -> Path:
    """Compile the wheel for ``spec`` into ``target`` (niced, 2 jobs unless told otherwise)."""
    with tempfile.TemporaryDirectory(prefix="edgefleet-engine-") as tmp:
        source = _source(Path(tmp), python)
        if spec.profile == "portable":
            ggml = source / "vendor/llama.cpp/ggml/src/CMakeLists.txt"
            _patch_install(source / "CMakeLists.txt", _patch_variants(ggml))
        env = {
            **os.environ,
            "CMAKE_ARGS": " ".join(spec.cmake_args),
            "CMAKE_BUILD_PARALLEL_LEVEL": os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", "2"),
        }
        out = Path(tmp) / "out"
        started = time.monotonic()
        command = ["nice", python, "-m", "pip", "wheel", "--no-cache-dir", "--no-deps"]
        _run([*command, "-w", str(out), str(source)], "build the wheel", env=env)
        wheel = wheel_in(out)
        if wheel is None:
            raise EngineBuildError("pip wheel produced no llama-cpp-python wheel")
        _refuse_amx(wheel)
        target.mkdir(parents=True, exist_ok=True)
        final = Path(shutil.copy2(wheel, target / wheel.name))
        manifest = {**spec.__dict__, "build_seconds": round(time.monotonic() - started)}
        (target / "build.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return final


def _refuse_amx(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        libs = {n: archive.read(n) for n in archive.namelist() if "libggml-cpu" in n}
    if found := amx_libraries(libs):
        raise EngineBuildError(f"AMX instructions in {', '.join(found)}: not installing")


def ensure_wheel(spec: BuildSpec, root: Path = WHEEL_DIR, python: str = sys.executable) -> Path:
    """The wheel for ``spec``: reused from its key directory, else built there."""
    directory = root / spec.key
    return wheel_in(directory) or build_wheel(spec, directory, python)


def _installed_libs(python: str) -> set[str] | None:
    """RECORD lines of the engine's shared libraries as installed for ``python``."""
    code = (
        "import importlib.metadata as m\n"
        "try: print(m.distribution('llama_cpp_python').read_text('RECORD') or '')\n"
        "except m.PackageNotFoundError: print('-')"
    )
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout
    return None if out.strip() == "-" else _lib_records(out)


def _lib_records(record: str) -> set[str]:
    return {line for line in record.splitlines() if ".so" in line.split(",")[0]}


def install(spec: BuildSpec, python: str, root: Path = WHEEL_DIR) -> Path:
    """Install the keyed wheel for ``python``'s environment unless exactly it is installed."""
    wheel = ensure_wheel(spec, root, sys.executable)
    with zipfile.ZipFile(wheel) as archive:
        record = next(n for n in archive.namelist() if n.endswith(".dist-info/RECORD"))
        wanted = _lib_records(archive.read(record).decode())
    if _installed_libs(python) == wanted:
        return wheel
    command = [python, "-m", "pip", "install", "--isolated", "--no-index"]
    command += ["--find-links", str(wheel.parent)]
    spec_pin = f"llama-cpp-python=={spec.version}"
    _run([*command, "--force-reinstall", "--no-deps", spec_pin], "install the engine")
    return wheel


def wheelhouse(spec: BuildSpec, project: Path, target: Path, root: Path = WHEEL_DIR) -> Path:
    """A fleet wheelhouse: the keyed engine wheel plus edgefleet and every other dependency."""
    engine = ensure_wheel(spec, root)
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(engine, target / engine.name)
    command = [sys.executable, "-m", "pip", "wheel", "--find-links", str(target), "-w", str(target)]
    _run([*command, str(project)], "build the wheelhouse")
    engines = sorted(target.glob("llama_cpp_python-*.whl"))
    if engines != [target / engine.name] or _digest(engines[0]) != _digest(engine):
        raise EngineBuildError(f"{target}: pip put another llama-cpp-python wheel there")
    return target


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run(command: list[str], what: str, env: dict[str, str] | None = None) -> None:
    sys.stderr.write(f"engine: {what}: {' '.join(command)}\n")
    sys.stderr.flush()
    if subprocess.run(command, env=env).returncode != 0:
        raise EngineBuildError(f"could not {what} (command above)")


def main(argv: list[str] | None = None) -> int:
    """``wheel``: build or reuse the wheel and print its path; ``install``: also install it."""
    parser = argparse.ArgumentParser(prog="python -m agent.engine.build", description=__doc__)
    parser.add_argument("action", choices=["wheel", "install", "wheelhouse", "key"])
    parser.add_argument("target", nargs="?", type=Path, help="wheelhouse: the directory")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="portable")
    parser.add_argument("--python", default=sys.executable, help="the environment to install to")
    parser.add_argument("--wheel-dir", type=Path, default=WHEEL_DIR, help="root of keyed wheels")
    args = parser.parse_args(argv)
    try:
        spec = spec_for(args.profile)
        if args.action == "key":
            result = args.wheel_dir / spec.key
        elif args.action == "wheel":
            result = ensure_wheel(spec, args.wheel_dir)
        elif args.action == "wheelhouse":
            project = Path(__file__).resolve().parents[2]
            target = args.target or project / "wheelhouse"
            result = wheelhouse(spec, project, target, args.wheel_dir)
        else:
            result = install(spec, args.python, args.wheel_dir)
    except EngineBuildError as exc:
        sys.stderr.write(f"engine: {exc}\n")
        return 1
    sys.stdout.write(f"{result}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
