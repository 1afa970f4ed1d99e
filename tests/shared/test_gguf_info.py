import json
import subprocess
import sys
from pathlib import Path

import pytest

from shared.gguf_info import GgufError, estimate_memory, read_gguf_info

REPO = Path(__file__).parents[2]


def test_reads_the_generated_tiny_model(tiny_gguf: Path) -> None:
    info = read_gguf_info(tiny_gguf)
    assert info.architecture == "llama"
    assert (info.layers, info.heads, info.kv_heads, info.embedding) == (2, 4, 2, 64)
    assert info.quantization == "Q4_0"
    assert info.instruction_tuned
    assert info.tensor_bytes < info.file_size


def test_kv_cache_scales_with_context_and_cache_type(tiny_gguf: Path) -> None:
    info = read_gguf_info(tiny_gguf)
    small = estimate_memory(info, n_ctx=512)
    large = estimate_memory(info, n_ctx=1024)
    assert large.kv_cache == 2 * small.kv_cache
    assert estimate_memory(info, n_ctx=1024, kv_cache_type="q8_0").kv_cache < large.kv_cache
    with pytest.raises(ValueError, match="KV-cache type"):
        estimate_memory(info, n_ctx=512, kv_cache_type="f64")


def test_not_a_gguf_is_a_clear_error(tmp_path: Path) -> None:
    bogus = tmp_path / "model.gguf"
    bogus.write_bytes(b"PK\x03\x04 not a model")
    with pytest.raises(GgufError, match="not a GGUF file"):
        read_gguf_info(bogus)
    with pytest.raises(GgufError, match="cannot read"):
        read_gguf_info(tmp_path / "missing.gguf")


def test_truncated_gguf_is_a_clear_error(tiny_gguf: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(tiny_gguf.read_bytes()[: tiny_gguf.stat().st_size // 2])
    with pytest.raises(GgufError, match="truncated"):
        read_gguf_info(cut)


@pytest.mark.slow
def test_real_demo_models_metadata(smollm2_path: Path, gemma3_path: Path) -> None:
    smol = read_gguf_info(smollm2_path)
    assert (smol.architecture, smol.quantization, smol.layers, smol.embedding) == (
        "llama",
        "Q4_1",
        30,
        576,
    )
    assert (smol.heads, smol.kv_heads, smol.vocab_size) == (9, 3, 49152)
    assert 130e6 < smol.parameters < 140e6
    assert smol.instruction_tuned
    gemma = read_gguf_info(gemma3_path)
    assert (gemma.architecture, gemma.quantization, gemma.layers, gemma.embedding) == (
        "gemma3",
        "Q4_K_M",
        18,
        640,
    )
    assert (gemma.kv_heads, gemma.key_length, gemma.sliding_window) == (1, 256, 512)
    assert 260e6 < gemma.parameters < 280e6
    assert not gemma.instruction_tuned


@pytest.mark.slow
def test_memory_estimate_is_within_20_percent_of_measured_peak_rss(
    smollm2_path: Path, gemma3_path: Path
) -> None:
    out = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "memory_estimate.py"),
            str(smollm2_path),
            str(gemma3_path),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    rows = json.loads(out.stdout)
    for row in rows:
        print(f"{row['model']}: estimate {row['estimate_mb']} MB, peak RSS {row['peak_rss_mb']} MB")
        assert 0.8 <= row["estimate_over_measured"] <= 1.2, row


def test_each_parallel_sequence_adds_its_own_kv_cells(tiny_gguf: Path) -> None:
    info = read_gguf_info(tiny_gguf)
    one = estimate_memory(info, n_ctx=512)
    four = estimate_memory(info, n_ctx=512, parallel=4)
    assert four.kv_cache == 4 * one.kv_cache
    assert four.weights == one.weights and four.overhead == one.overhead
    with pytest.raises(ValueError):
        estimate_memory(info, n_ctx=512, parallel=0)
