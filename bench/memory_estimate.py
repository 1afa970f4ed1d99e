"""Compare shared.gguf_info's memory estimate with the peak RSS of really running a model.

Each model is loaded in a fresh process at the given context, answers one short
prompt, and reports its peak RSS (VmHWM: unlike ru_maxrss, it does not inherit the parent's
peak across fork and exec). Usage:

    python bench/memory_estimate.py MODEL.gguf [MODEL.gguf ...] [--n-ctx 2048] [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from shared.gguf_info import estimate_memory, read_gguf_info

_CHILD = """
import sys
from llama_cpp import Llama
from agent.inference.runtime import load_cpu_backends
load_cpu_backends()
llm = Llama(sys.argv[1], n_ctx=int(sys.argv[2]), n_threads=1, verbose=False)
llm.create_completion("A colour:", max_tokens=16, temperature=0)
with open("/proc/self/status") as status:
    print(next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:")))
"""


def measure_peak_rss(path: str, n_ctx: int) -> int:
    """Peak RSS in bytes of a fresh process that loads ``path`` and answers once."""
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, path, str(n_ctx)], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip().splitlines()[-1])


def compare(path: str, n_ctx: int) -> dict[str, float | str]:
    """Estimate and measurement for one model, in MB, with their ratio."""
    info = read_gguf_info(path)
    estimate = estimate_memory(info, n_ctx=n_ctx)
    peak = measure_peak_rss(path, n_ctx)
    return {
        "model": info.name or path,
        "n_ctx": n_ctx,
        "estimate_mb": round(estimate.total / 1e6, 1),
        "peak_rss_mb": round(peak / 1e6, 1),
        "estimate_over_measured": round(estimate.total / peak, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--n-ctx", type=int, default=2048)
    parser.add_argument(
        "--json", action="store_true", help="print one JSON list instead of a table"
    )
    args = parser.parse_args()
    rows = [compare(model, args.n_ctx) for model in args.models]
    if args.json:
        print(json.dumps(rows))
        return
    print(f"{'model':40} {'n_ctx':>6} {'estimate MB':>12} {'peak RSS MB':>12} {'ratio':>6}")
    for row in rows:
        print(
            f"{row['model']!s:40} {row['n_ctx']:>6} {row['estimate_mb']:>12} "
            f"{row['peak_rss_mb']:>12} {row['estimate_over_measured']:>6}"
        )


if __name__ == "__main__":
    main()
