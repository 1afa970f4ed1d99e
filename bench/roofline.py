"""Decode speed against the memory-bandwidth roofline of this machine.

Decoding one token reads every weight once, so decode tokens/s cannot exceed
bandwidth / weight bytes. Bandwidth is measured here with a large numpy copy
(read + write counted), single-threaded like the decode. Usage:

    python bench/roofline.py MODEL.gguf [MODEL.gguf ...] [--tokens 128] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from agent.inference.runtime import ModelRuntime


def copy_bandwidth_gbs(megabytes: int = 256, runs: int = 5) -> float:
    """Best-of-``runs`` bytes moved per second by ``np.copyto`` of a large array, in GB/s."""
    src = np.ones(megabytes * 1_000_000 // 8, dtype=np.float64)
    dst = np.empty_like(src)
    best = 0.0
    for _ in range(runs):
        started = time.perf_counter()
        np.copyto(dst, src)
        elapsed = time.perf_counter() - started
        best = max(best, 2 * src.nbytes / elapsed / 1e9)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    for path in args.models:
        bandwidth = copy_bandwidth_gbs()
        runtime = ModelRuntime(path, threads=1, n_ctx=512)
        runtime.time_decode(8)  # warm-up: pages in the weights
        speeds = [args.tokens / runtime.time_decode(args.tokens) for _ in range(args.runs)]
        weights = runtime.info.tensor_bytes
        ceiling = bandwidth * 1e9 / weights
        tok_s = statistics.fmean(speeds)
        sd = statistics.stdev(speeds) if len(speeds) > 1 else 0.0
        print(
            f"{runtime.model_id}: copy bandwidth {bandwidth:.1f} GB/s, "
            f"weights {weights / 1e6:.0f} MB -> roofline {ceiling:.0f} tok/s; "
            f"measured tg{args.tokens} {tok_s:.1f} tok/s (sd {sd:.1f}) = "
            f"{100 * tok_s / ceiling:.0f}% of the roofline"
        )
        runtime.close()


if __name__ == "__main__":
    main()
