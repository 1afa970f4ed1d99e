"""Device-class profiles: the budgets and settings one kind of box runs under.

Profiles live as YAML in ``firmware-config/classes/``. Unknown keys are an
error that names the key, so a typo never silently falls back to a default.
"""

from __future__ import annotations

from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

ClassName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
Arch = Literal["aarch64", "armv7l", "x86_64"]
KvCacheType = Literal["f16", "q8_0", "q4_0"]

KV_BYTES_PER_ELEMENT: dict[str, float] = {"f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32}
"""Bytes per KV-cache element for each cache type (ggml block sizes)."""


class GpioPins(BaseModel):
    """BCM pin numbers for the status LED and the button; absent means none fitted."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status_led: int | None = Field(None, ge=0, le=27, description="BCM pin of the status LED")
    button: int | None = Field(None, ge=0, le=27, description="BCM pin of the push button")


class DeviceProfile(BaseModel):
    """One device class: what a box of this kind may spend on a model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: ClassName = Field(description="class id, e.g. pi4-4gb")
    description: str = Field("", description="human-readable summary of the hardware")
    arch: Arch = Field(description="CPU architecture models must be built for")
    memory_budget_mb: int = Field(gt=0, description="RAM the inference process may use")
    latency_budget_s: float = Field(
        gt=0, description="longest acceptable time for a standard answer"
    )
    disk_budget_mb: int = Field(gt=0, description="disk the model store may fill")
    threads: int = Field(ge=1, le=256, description="llama.cpp threads (one per free core)")
    n_ctx: int = Field(2048, ge=128, le=131072, description="context size in tokens")
    kv_cache_type: KvCacheType = Field("f16", description="KV-cache element type")
    parallel: int | None = Field(
        None,
        ge=1,
        le=64,
        description="sequences decoded together, each with its own n_ctx of KV cells; "
        "absent: as many as fit the memory budget with the model, up to 4",
    )
    conversation_store_mb: int | None = Field(
        None,
        ge=0,
        le=65536,
        description="host memory for conversations whose KV cells a newer conversation needed "
        "(a later turn is copied back instead of re-evaluated); absent: half of what the memory "
        "budget leaves beside the model and its sequences; 0: off",
    )
    mlock: bool = Field(False, description="lock model pages in RAM")
    standard_prompt_tokens: int = Field(
        128, ge=1, description="prompt length of the class's standard answer (for C and latency)"
    )
    standard_answer_tokens: int = Field(
        256, ge=1, description="generated length of the class's standard answer"
    )
    memory_bandwidth_gbs: float = Field(
        gt=0, description="nominal effective memory bandwidth, for predicting decode speed"
    )
    compute_gflops: float = Field(gt=0, description="nominal compute rate, for predicting prefill")
    gpio: GpioPins = Field(default_factory=GpioPins, description="GPIO pins, if any are fitted")


class ProfileError(ValueError):
    """A profile that cannot be used, with the file and the offending key in the message."""


def parse_profile(text: str, *, source: str = "<profile>") -> DeviceProfile:
    """Validate one profile from YAML text; errors name the source and the key."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProfileError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ProfileError(f"{source}: expected a mapping of profile fields")
    try:
        return DeviceProfile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
            for err in exc.errors(include_url=False)
        )
        raise ProfileError(f"{source}: {problems}") from None
