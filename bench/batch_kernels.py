"""Whether a decode step of several sequences is cheaper per token, by weight format and size.

Batching can only raise throughput where one step carrying 4 sequences' tokens
costs less than 4 steps of one. That depends on ggml's CPU kernels for the
weight format (some multiply several tokens at once, some a dot product per
token) and on whether the step waits on memory or on arithmetic. This writes a
random-weight llama of a chosen shape (F16, with :mod:`agent.engine.tiny_gguf`),
requantizes it with llama.cpp to Q4_1 (SmolLM2's demo format), Q4_0 and
Q4_K_M (Gemma's), and measures one step of 1, 2 and 4 sequences for each, at 1
and 2 threads, side by side in one run (:func:`bench.batching.step_cost`). Usage:

    python bench/batch_kernels.py [--embd 2048 --layers 16 --ff 5632] [--threads 1 2]
        [--json out.json]

The default shape is about 700 M parameters (410-450 MB at 4 bits): large enough
that its weights do not stay in this CPU's caches, unlike the demo models.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from agent.engine.tiny_gguf import TinyModelSpec, write_tiny_gguf
from bench.batching import FORMATS, requantized, step_cost
from shared.profiles import parse_profile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embd", type=int, default=2048)
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--ff", type=int, default=5632)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    source = Path("firmware-config/classes/dev-x86-1core.yaml")
    base = parse_profile(source.read_text(), source=str(source))
    spec = TinyModelSpec(
        n_embd=args.embd,
        n_layers=args.layers,
        n_heads=16,
        n_kv_heads=4,
        n_ff=args.ff,
        quantization="F16",
        name="synthetic",
    )
    rows = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="edgefleet-kernels-") as scratch:
        f16 = write_tiny_gguf(Path(scratch) / "synthetic-F16.gguf", spec)
        models = {name: requantized(f16, name, Path(scratch)) for name in FORMATS}
        f16.unlink()
        for threads in args.threads:
            profile = base.model_copy(update={"threads": threads})
            for name, path in models.items():
                steps = {s["sequences"]: s for s in step_cost(path, profile, steps=15)}
                rows.append(
                    {
                        "format": name,
                        "threads": threads,
                        "file_mb": round(path.stat().st_size / 1e6),
                        "wall_ms_per_step": {n: s["wall_ms_per_step"] for n, s in steps.items()},
                        "per_token_at_4_vs_1": round(
                            4 * steps[1]["wall_ms_per_step"] / steps[4]["wall_ms_per_step"], 2
                        ),
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
    report = {
        "shape": {"embd": args.embd, "layers": args.layers, "ff": args.ff},
        "load_1m_before": round(load_before, 2),
        "load_1m_after": round(os.getloadavg()[0], 2),
        "cores": os.cpu_count(),
        "results": rows,
    }
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
