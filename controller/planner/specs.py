"""ModelSpec from GGUF metadata: per-class memory estimates with ``shared.gguf_info``."""

from __future__ import annotations

from collections.abc import Iterable

from controller.planner.types import ModelSpec
from shared.gguf_info import GgufInfo, estimate_memory, parallel_for
from shared.profiles import DeviceProfile

MB = 1_000_000


def model_spec_from_gguf(
    model_id: str,
    info: GgufInfo,
    profiles: Iterable[DeviceProfile],
    *,
    extrinsic: float = 0.0,
    archs: frozenset[str] | None = None,
) -> ModelSpec:
    """What the planner needs of a model, estimated per class: context, KV type, sequences."""
    parallel = {p.name: parallel_for(info, p) for p in profiles}
    per_sequence = {
        p.name: estimate_memory(info, n_ctx=p.n_ctx, kv_cache_type=p.kv_cache_type)
        for p in profiles
    }
    estimates = {
        p.name: estimate_memory(
            info, n_ctx=p.n_ctx, kv_cache_type=p.kv_cache_type, parallel=parallel[p.name]
        ).total
        / MB
        for p in profiles
    }
    return ModelSpec(
        model_id=model_id,
        parameters=info.parameters,
        weights_bytes=info.tensor_bytes,
        file_size_bytes=info.file_size,
        memory_estimate_mb=estimates,
        parallel=parallel,
        kv_mb_per_sequence={name: e.kv_cache / MB for name, e in per_sequence.items()},
        archs=archs,
        extrinsic=extrinsic,
    )
