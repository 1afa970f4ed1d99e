"""Prefill and decode tok/s of the portable engine build vs a native (-march=native) one.

Both wheels come from ``agent.engine.build`` (built first if their key directory is
empty; that is also how the build time is measured, see ``build.json`` next to each
wheel); ``--native-from SITE`` takes the native side from an environment where pip
built llama-cpp-python itself (its default is ``GGML_NATIVE=ON``) instead. Each is
installed into its own directory and measured in a fresh child process, llama-bench
style: ``--pp`` prompt tokens evaluated in one batch, then ``--tg`` single-token
evaluations. Runs alternate portable/native so load from other
work on a shared machine hits both alike; the CPU time of the evaluating thread is
reported too, as it is what contention disturbs least. Usage::

    python bench/engine_build.py MODEL.gguf [--runs 6] [--pp 128] [--tg 64] [--threads 1]
        [--native-from .venv-of-a-plain-pip-install/lib/python3.11/site-packages]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from agent.engine.build import ensure_wheel, spec_for

CHILD = r"""
import json, sys, time, pathlib, ctypes
import llama_cpp
from agent.inference.runtime import load_cpu_backends
load_cpu_backends()
model, pp, tg, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
llm = llama_cpp.Llama(model, n_ctx=pp + tg + 8, n_threads=threads, n_threads_batch=threads,
                      n_batch=pp, verbose=False)
cpu_lib = sorted({l.split()[-1] for l in open("/proc/self/maps") if "libggml-cpu" in l})
prompt = ([llm.token_bos()] + list(range(100, 100 + pp - 1)))[:pp]
llm.reset()
w0, c0 = time.perf_counter(), time.thread_time()
llm.eval(prompt)
w1, c1 = time.perf_counter(), time.thread_time()
for _ in range(tg):
    llm.eval([200])
w2, c2 = time.perf_counter(), time.thread_time()
print(json.dumps({"pp_tok_s": pp / (w1 - w0), "tg_tok_s": tg / (w2 - w1),
                  "pp_cpu_tok_s": pp / max(c1 - c0, 1e-9), "tg_cpu_tok_s": tg / max(c2 - c1, 1e-9),
                  "cpu_lib": [pathlib.Path(p).name for p in cpu_lib]}))
"""


def install(profile: str, root: Path) -> tuple[Path, dict[str, object]]:
    """The profile's keyed wheel, unpacked into its own directory; and its build manifest."""
    wheel = ensure_wheel(spec_for(profile))
    target = root / profile
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), wheel],
        check=True,
    )
    return target, json.loads((wheel.parent / "build.json").read_text())


def hybrid(native_site: Path, ggml_libs: Path, root: Path) -> Path:
    """A native install's llama_cpp with its ggml libraries swapped for a portable build's."""
    lib = root / "portable" / "llama_cpp" / "lib"
    shutil.copytree(native_site / "llama_cpp", lib.parent)
    for old in lib.glob("libggml*"):
        old.unlink()
    for new in ggml_libs.glob("libggml*.so*"):
        shutil.copy2(new, lib / new.name, follow_symlinks=False)
    return root / "portable"


def measure(site: Path, model: Path, pp: int, tg: int, threads: int) -> dict[str, object]:
    """One run in a fresh process that imports llama_cpp from ``site`` only."""
    env = {**os.environ, "PYTHONPATH": str(site)}
    command = [sys.executable, "-c", CHILD, str(model), str(pp), str(tg), str(threads)]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--pp", type=int, default=128)
    parser.add_argument("--tg", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--native-from", type=Path, help="site-packages of a pip-built engine")
    parser.add_argument(
        "--portable-libs",
        type=Path,
        help="the ggml libraries of a portable build (its build tree's bin/), put in place of "
        "--native-from's: libllama has no CPU-specific code, the CPU variants are all in ggml",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="engine-bench-") as tmp:
        if args.portable_libs is None:
            sites = {"portable": install("portable", Path(tmp))}
        else:
            sites = {"portable": (hybrid(args.native_from, args.portable_libs, Path(tmp)), {})}
        if args.native_from is None:
            sites["native"] = install("native", Path(tmp))
        else:
            shutil.copytree(args.native_from / "llama_cpp", Path(tmp) / "native" / "llama_cpp")
            sites["native"] = (Path(tmp) / "native", {"cmake_args": "pip's default (native)"})
        for profile, (_, manifest) in sites.items():
            flags = manifest.get("cmake_args", "ggml from --portable-libs")
            print(f"{profile}: {flags}, built in {manifest.get('build_seconds')} s")
        rows: dict[str, list[dict[str, object]]] = {p: [] for p in sites}
        for run in range(args.runs):
            for profile in sites if run % 2 == 0 else reversed(list(sites)):
                site = sites[profile][0]
                rows[profile].append(measure(site, args.model, args.pp, args.tg, args.threads))
    report(rows, load=os.getloadavg()[0])


def report(rows: dict[str, list[dict[str, object]]], load: float) -> None:
    """Medians per build and the portable/native ratio of each."""
    keys = ("pp_tok_s", "tg_tok_s", "pp_cpu_tok_s", "tg_cpu_tok_s")
    medians = {
        p: {k: statistics.median(float(r[k]) for r in rs) for k in keys} for p, rs in rows.items()
    }
    print(f"runs per build: {len(rows['portable'])}; 1-min load at the end: {load:.1f}")
    for profile, runs in rows.items():
        print(f"CPU library loaded by {profile}: {runs[0]['cpu_lib']}")
    print(f"{'metric':<14}{'portable':>12}{'native':>12}{'ratio':>8}")
    for key in keys:
        p, n = medians["portable"][key], medians["native"][key]
        print(f"{key:<14}{p:>12.1f}{n:>12.1f}{p / n:>8.3f}")


if __name__ == "__main__":
    main()
