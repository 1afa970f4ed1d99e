"""Doctor checks of the box itself: CPU, engine, memory and disk against the class budget, clock."""

from __future__ import annotations

import platform
import time
from email.utils import parsedate_to_datetime
from pathlib import Path

import psutil

from agent import probe
from agent.engine.smoke import check_engine
from shared.doctor import CheckResult, fail, ok, warn
from shared.gguf_info import GgufError, estimate_memory, read_gguf_info
from shared.profiles import DeviceProfile

MB = 1_000_000
CPU_FEATURES = (
    "sse4_2 avx avx2 fma f16c avx512f avx512_vnni avx_vnni amx_tile "  # x86-64
    "asimd asimddp asimdhp fphp sve i8mm"  # aarch64 (dotprod, fp16, SVE, int8 matmul)
).split()
CLOCK_WARN_S = 5.0
CLOCK_FAIL_S = 300.0
"""Beyond a few minutes TLS certificates look not-yet-valid or expired and every
timestamp the device reports is wrong."""


def cpu_flags(cpuinfo: Path = probe.CPUINFO) -> set[str]:
    """The CPU's feature flags (x86 ``flags``, ARM ``Features``)."""
    try:
        lines = cpuinfo.read_text(errors="replace").splitlines()
    except OSError:
        return set()
    for line in lines:
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def check_cpu() -> CheckResult:
    """CPU model and the features llama.cpp's CPU variants choose by."""
    flags = cpu_flags()
    present = [f for f in CPU_FEATURES if f in flags]
    summary = f"{probe.cpu_model() or 'unknown CPU'} ({platform.machine()}): {' '.join(present)}"
    return ok("cpu", summary, model=probe.cpu_model(), arch=platform.machine(), features=present)


def check_engine_runs(threads: int) -> CheckResult:
    """The smoke generation in a child, with the loaded CPU variant and build facts."""
    report = check_engine(threads=threads)
    facts = report.model_dump(exclude_none=True)
    if not report.ok:
        crash, _, fix = (report.reason or "the engine check failed").partition("; fix: ")
        return fail("engine", crash, fix or "see the agent log", **facts)
    summary = (
        f"llama-cpp-python {report.llama_cpp_python}, CPU library {report.cpu_backend}, "
        f"{report.smoke_tokens} tokens in {report.smoke_seconds or 0:.2f} s"
    )
    if report.amx_kernels and "amx_tile" in cpu_flags():
        return fail(
            "engine",
            f"{summary}; the CPU library holds AMX kernels, which GCC 12 miscompiles",
            "reinstall the engine built for this fleet (make venv, or the wheelhouse)",
            **facts,
        )
    return ok("engine", summary, **facts)


def check_memory(profile: DeviceProfile, model: Path | None) -> CheckResult:
    """RAM against the class's memory budget, and the model to serve against the budget."""
    memory = psutil.virtual_memory()
    budget = profile.memory_budget_mb
    facts = {"total_mb": memory.total / MB, "available_mb": memory.available / MB}
    if model is not None:
        try:
            info = read_gguf_info(model)
        except (GgufError, OSError) as exc:
            return fail("memory", f"cannot read the model {model}: {exc}", "re-download it")
        need = estimate_memory(info, n_ctx=profile.n_ctx, kv_cache_type=profile.kv_cache_type)
        facts["model_mb"] = need.total_mb
        if need.total_mb > budget:
            return fail(
                "memory",
                f"{model.name} needs {need.total_mb:.0f} MB at n_ctx {profile.n_ctx}, "
                f"class {profile.name} allows {budget} MB",
                "assign a smaller model (or a lower n_ctx in the profile overrides)",
                **facts,
            )
    if memory.total / MB < budget:
        return fail(
            "memory",
            f"{memory.total / MB:.0f} MB of RAM, class {profile.name} budgets {budget} MB",
            "give this device the class that matches its RAM",
            **facts,
        )
    if memory.available / MB < budget:
        return warn(
            "memory",
            f"{memory.available / MB:.0f} MB available, the class budgets {budget} MB",
            "stop other services on this box, or the model may not load",
            **facts,
        )
    return ok("memory", f"{memory.available / MB:.0f} MB available, budget {budget} MB", **facts)


def check_disk(profile: DeviceProfile, models_dir: Path, used_mb: float) -> CheckResult:
    """Free disk against what the model store may still fill."""
    free = probe.disk_free_mb(models_dir)
    room = profile.disk_budget_mb - used_mb
    facts = {"free_mb": free, "store_used_mb": used_mb, "budget_mb": profile.disk_budget_mb}
    if free < room:
        return warn(
            "disk",
            f"{free:.0f} MB free at {models_dir}, the store may grow by {room:.0f} MB more",
            "free disk space or lower disk_budget_mb, or downloads will fail",
            **facts,
        )
    return ok(
        "disk", f"{free:.0f} MB free, store {used_mb:.0f}/{profile.disk_budget_mb} MB", **facts
    )


def check_clock(server_date: str | None, measured_at: float) -> CheckResult:
    """The clock against the controller's ``Date`` header (or just a plausible year)."""
    if server_date is None:
        year = time.gmtime().tm_year
        if year < 2025:
            return fail("clock", f"the clock says {year}", "enable NTP (timedatectl set-ntp true)")
        return warn("clock", "not compared: no controller answered", "set controller_url")
    skew = measured_at - parsedate_to_datetime(server_date).timestamp()
    facts = {"skew_s": round(skew, 1)}
    summary = f"{abs(skew):.0f} s {'ahead of' if skew > 0 else 'behind'} the controller"
    if abs(skew) > CLOCK_FAIL_S:
        return fail("clock", summary, "enable NTP on both (timedatectl set-ntp true)", **facts)
    if abs(skew) > CLOCK_WARN_S:
        return warn("clock", summary, "enable NTP (timedatectl set-ntp true)", **facts)
    return ok("clock", f"within {CLOCK_WARN_S:.0f} s of the controller", **facts)
